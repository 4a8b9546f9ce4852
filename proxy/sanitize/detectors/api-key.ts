// API keys with a recognisable prefix: OpenAI and Anthropic (sk-, sk-proj-, sk-ant-api03-), Stripe
// secret and restricted keys (sk_live_, rk_test_), GitHub (ghp_, gho_, ghu_, ghs_, ghr_,
// github_pat_), Slack (xoxb-, xoxp-, xapp-…), Google (AIza…), GitLab (glpat-), npm (npm_), Hugging
// Face (hf_) and SendGrid (SG.x.y). The random part must look random: letters and digits, entropy,
// no placeholder words (sk-your-key-here).
import { chain, define, entropy, literal, placeholder, start } from '../detector.ts';

const FORMS = [
  String.raw`sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d{2}-)?[A-Za-z0-9_\-]{20,200}`,
  String.raw`[sr]k_(?:live|test)_[A-Za-z0-9]{16,99}`,
  String.raw`gh[pousr]_[A-Za-z0-9]{36,251}`,
  String.raw`github_pat_[A-Za-z0-9_]{60,255}`,
  String.raw`xox[abposr]-[A-Za-z0-9\-]{10,250}`,
  String.raw`xapp-[A-Za-z0-9\-]{10,250}`,
  String.raw`AIza[A-Za-z0-9_\-]{35}`,
  String.raw`glpat-[A-Za-z0-9_\-]{20,64}`,
  String.raw`npm_[A-Za-z0-9]{36}`,
  String.raw`hf_[A-Za-z]{30,40}`,
  String.raw`SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{16,64}`,
];

// Every prefix of every form, then the form's alphabet up to its length (a superset, which is enough).
const PARTIAL = [
  chain(['s', 'k'], String.raw`[\-_][A-Za-z0-9_\-]{0,222}`),
  chain(['r', 'k'], '_[A-Za-z0-9_]{0,110}'),
  chain(['g', 'h'], String.raw`[pousr](?:_[A-Za-z0-9]{0,252})?`),
  chain(literal('github_pat_'), '[A-Za-z0-9_]{0,256}'),
  chain(['g', 'l', 'p', 'a', 't'], String.raw`\-[A-Za-z0-9_\-]{0,65}`),
  chain(['x', 'o', 'x'], String.raw`[abposr](?:\-[A-Za-z0-9\-]{0,251})?`),
  chain(['x', 'a', 'p', 'p'], String.raw`\-[A-Za-z0-9\-]{0,251}`),
  chain(['A', 'I', 'z', 'a'], String.raw`[A-Za-z0-9_\-]{0,36}`),
  chain(['n', 'p', 'm'], '_[A-Za-z0-9]{0,37}'),
  chain(['h', 'f'], '_[A-Za-z]{0,41}'),
  chain(['S', 'G'], String.raw`\.[A-Za-z0-9_\-.]{0,100}`),
];

export const apiKey = define({
  name: 'api_key',
  label: 'API_KEY',
  pattern: String.raw`${start('\\w\\-')}(?:${FORMS.join('|')})(?![A-Za-z0-9_\-])`,
  partial: `${start('\\w\\-')}(?:${PARTIAL.join('|')})`,
  accept(m) {
    const random = m.replace(/^(?:sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d{2}-)?|[sr]k_(?:live|test)_|gh[pousr]_|github_pat_|xox[abposr]-|xapp-|AIza|glpat-|npm_|hf_|SG\.)/, '');
    if (placeholder(random) || entropy(random) < 3) return 0;
    const mixed = /\d/.test(random) ? /[A-Za-z]/.test(random) : /[a-z]/.test(random) && /[A-Z]/.test(random);
    return mixed ? m.length : 0;
  },
  mask: () => '<API_KEY>',
});
