// The demo's sanitization scene: the fake model repeats what it is told, so a card number and an
// email address in the question come back in the answer, where Warden masks them (streamed too);
// an internal recipient may see the email address, never the card.
import { call, expect, type Scene } from './scene-kit.ts';

const QUESTION = 'Charge card 4242 4242 4242 4242 and send the receipt to jane.doe@example.com';

export const SANITIZE_SCENES: Scene[] = [
  {
    title: 'Sanitization: a card number and an email address in the model\'s answer are masked, streamed or not',
    async run(env) {
      const ask = (headers: Record<string, string> = {}, stream = false) => call(`${env.trafficUrl}/v1/chat/completions`, {
        model: 'gpt-4o', stream, messages: [{ role: 'user', content: QUESTION }],
      }, headers);
      const whole = await ask();
      const text = String(whole.json?.choices?.[0]?.message?.content);
      expect(!text.includes('4242 4242') && text.includes('<CARD ****4242>') && text.includes('<EMAIL>'), `a masked answer, got ${text}`);
      const streamed = await ask({}, true);
      const deltas = streamed.text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices?.[0]?.delta?.content ?? '').join('');
      expect(!deltas.includes('4242 4242') && deltas.includes('<CARD ****4242>'), `a masked stream, got ${deltas}`);
      const internal = await ask({ 'x-warden-recipient': 'internal' });
      const internalText = String(internal.json?.choices?.[0]?.message?.content);
      expect(internalText.includes('jane.doe@example.com') && internalText.includes('<CARD ****4242>'), `the email kept for an internal recipient, got ${internalText}`);
      return [
        `answer: ${text}`,
        `streamed, joined: ${deltas}`,
        `x-warden-recipient: internal → ${internalText}`,
        `x-warden-actions: ${whole.headers['x-warden-actions']}`,
      ];
    },
  },
];
