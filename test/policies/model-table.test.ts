import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createModelTable } from '../../proxy/model-table.ts';
import { testPolicy } from '../helpers/policy.ts';

const table = createModelTable(testPolicy({
  models: {
    'gpt-4o': { name: 'gpt-4o', pin: 'gpt-4o-2024-11-20', contextTokens: 128_000 },
    'claude-sonnet-4-5': { name: 'claude-sonnet-4-5', contextTokens: 200_000 },
    'gpt-3.5-turbo': { name: 'gpt-3.5-turbo', contextTokens: 16_385 },
  },
}));

test('lookup finds the alias, its pin, and dated snapshots of it', () => {
  for (const name of ['gpt-4o', 'gpt-4o-2024-11-20', 'gpt-4o-2024-08-06']) assert.equal(table.lookup(name)?.name, 'gpt-4o', name);
  assert.equal(table.lookup('claude-sonnet-4-5-20250929')?.name, 'claude-sonnet-4-5');
  assert.equal(table.lookup('gpt-3.5-turbo-0125')?.name, 'gpt-3.5-turbo');
});

test('lookup does not take a different model for a snapshot because its name starts alike', () => {
  for (const name of ['gpt-4o-mini', 'gpt-4o-mini-2024-07-18', 'gpt-4o-audio-preview', 'claude-sonnet-4-5-extra']) {
    assert.equal(table.lookup(name), undefined, name);
  }
  assert.equal(table.lookup(undefined), undefined);
});

test('exact finds only the names the policy lists', () => {
  assert.equal(table.exact('gpt-4o')?.pin, 'gpt-4o-2024-11-20');
  assert.equal(table.exact('gpt-4o-2024-11-20'), undefined);
});
