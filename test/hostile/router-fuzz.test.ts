// Fuzzing the router with request targets built to climb out of a mount: dot segments in every
// spelling (%2e, mixed case, double-encoded), encoded slashes and backslashes, broken escapes. It
// never throws anything but InvalidRequestError (a 400), and never routes a path that holds a dot
// segment once decoded, so no upstream or tool is ever asked for `../`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InvalidRequestError } from '../../proxy/errors.ts';
import { matchRoute, type RouteMatch } from '../../proxy/http/router.ts';
import { requestTarget } from '../helpers/hostile-arbitraries.ts';

const DOT_SEGMENT = /(^|[/\\])\.\.?([/\\]|$)/;

function route(url: string): RouteMatch | 'refused' | undefined {
  try {
    return matchRoute(url);
  } catch (err) {
    assert.ok(err instanceof InvalidRequestError, `${url}: ${(err as Error).name}: ${(err as Error).message}`);
    return 'refused';
  }
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

test('matchRoute never throws but a 400, and never routes a dot segment, decoded or not', () => {
  fc.assert(fc.property(fc.oneof(requestTarget, fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 40 })), (url) => {
    const m = route(url);
    if (m === undefined || m === 'refused') return;
    const path = m.rest.split('?')[0];
    for (const p of [path, decoded(path), m.upstream]) assert.doesNotMatch(p, DOT_SEGMENT, `${url} routed to ${JSON.stringify(m)}`);
    assert.ok(m.upstream.length > 0);
    assert.ok(m.rest.startsWith('/'), `${url}: rest ${m.rest}`);
  }), { numRuns: 5_000 });
});

test('traversal the fuzzer must never get past, spelled out', () => {
  for (const url of [
    '/tools/../admin', '/tools/%2e%2e/admin', '/tools/%2E%2e/admin', '/tools/lookup_order/..', '/tools/lookup_order%2f..%2f..%2fadmin',
    '/mcp/x/../../', '/mcp/crm/..%2f..%2fetc', '/mcp/%2e%2e', '/v1/../../admin', '/v1/..%5c..%5cadmin', '/v1/chat/.%2e/x',
    '/upstreams/x/./y', '/anthropic/v1/%2e', '/v1/%zz', '/tools/a\\b',
  ]) assert.equal(route(url), 'refused', url);
});

test('an encoded slash in a tool or server name stays part of the name (an unknown tool, never a sub-path)', () => {
  assert.deepEqual(matchRoute('/tools/a%2Fb'), { kind: 'tool', upstream: 'a/b', rest: '/' });
  assert.deepEqual(matchRoute('/mcp/crm%2Fx/mcp'), { kind: 'mcp', upstream: 'crm/x', rest: '/mcp' });
  // Double-encoded dots decode once, to the literal text %2e%2e: a name nothing declares.
  assert.deepEqual(matchRoute('/tools/%252e%252e'), { kind: 'tool', upstream: '%2e%2e', rest: '/' });
});
