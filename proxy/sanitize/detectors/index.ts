// The built-in detectors, in the order that breaks ties between matches of the same start and length.
import type { Detector } from '../detector.ts';
import { apiKey } from './api-key.ts';
import { awsKey } from './aws-key.ts';
import { bearerToken } from './bearer-token.ts';
import { creditCard } from './credit-card.ts';
import { email } from './email.ts';
import { iban } from './iban.ts';
import { ipAddress } from './ip-address.ts';
import { jwt } from './jwt.ts';
import { phone } from './phone.ts';
import { privateKey } from './private-key.ts';
import { usSsn } from './us-ssn.ts';

export const BUILTIN_DETECTORS: readonly Detector[] = Object.freeze([
  privateKey, jwt, bearerToken, awsKey, apiKey, creditCard, iban, usSsn, phone, email, ipAddress,
]);

/** The names a policy may list in sanitize.detectors. */
export const BUILTIN_NAMES: readonly string[] = Object.freeze(BUILTIN_DETECTORS.map((d) => d.name));
