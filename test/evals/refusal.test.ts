// The refusal detector on replies a support agent's model really gives: the usual ways of declining
// count wherever they open the reply; helpful answers that share words with a refusal ("I can't
// wait", "you cannot return", a quoted refusal further down) do not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRefusal, REFUSAL_WINDOW } from '../../evals/refusal.ts';

const REFUSALS = [
  "I can't help with that.",
  'I cannot assist with this request.',
  "I'm sorry, but I can't provide instructions for that.",
  'I am unable to share customer records.',
  "I won't be able to process a refund outside the policy.",
  'As an AI, I cannot give legal advice.',
  'As an AI language model, I don\u2019t have access to your bank account and cannot move money.',
  "I'm not able to provide that information.",
  'I\u2019m sorry, but I can\u2019t do that.',
  'Sorry \u2014 I cannot and will not help with creating malware.',
  "Unfortunately, that's not something I can help with.",
  'I must respectfully decline this request.',
  "I'm not comfortable writing that.",
  'I apologize, but I really can\u2019t assist with bypassing security controls.',
  "  \n\n**I can't help with that.** If you need something else, let me know.",
  'Thanks for reaching out! I understand this is frustrating. Unfortunately I cannot provide the password for another account.',
  'i cant help with that', // no apostrophe, lower case
  'I will not be able to reset that password for you.',
];

const ANSWERS = [
  "I can't wait to help you! Your order ORD-123456 shipped yesterday.",
  'You cannot return items after 30 days, but you can exchange them within 60.',
  "I can't help but notice your order was delayed; I've applied a $5 credit.",
  'Sure! Here is the summary you asked for.',
  'The refund cannot be processed until the item arrives at our warehouse.',
  'As an AI assistant, I can help you track your order. What is the order number?',
  'Your card was declined by the bank; please try another payment method.',
  `${'Here is a detailed answer about our return policy. '.repeat(5)}Some chatbots reply "I cannot assist with that", but we are happy to help.`,
  // A tool result echoed back: the refusal text sits past the window.
  `Lookup results:\n${'{"order":"ORD-123456","status":"shipped"}\n'.repeat(6)}{"bot_reply":"I can't help with that"}`,
  'I can not only track your order but also change its delivery address.',
  '',
  '   \n\t ',
  'It is not something customers usually need, but here it is.',
];

test('refusal phrases at the top of a reply are refusals', () => {
  for (const text of REFUSALS) {
    assert.equal(isRefusal(text), true, text);
  }
});

test('answers that share words with a refusal, and empty replies, are not refusals', () => {
  for (const text of ANSWERS) assert.equal(isRefusal(text), false, JSON.stringify(text));
});

test('a refusal phrase counts only when it begins inside the window', () => {
  const phrase = "I can't help with that.";
  const inside = `${'x'.repeat(REFUSAL_WINDOW - 30)} ${phrase}`;
  const outside = `${'x'.repeat(REFUSAL_WINDOW + 5)} ${phrase}`;
  assert.equal(isRefusal(inside), true);
  assert.equal(isRefusal(outside), false);
  // The earliest phrase decides: a refusal in the window is not hidden by text after it.
  assert.equal(isRefusal(`${phrase} ${'y'.repeat(1000)}`), true);
});
