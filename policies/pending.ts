// Policy keys the schema accepts because DESIGN.md fixes their shape, but whose capability has not
// landed in this version. The loader notes them and the reference marks them: saying so beats
// silently ignoring a protection an operator believes is on. Each capability removes its entries.
import type { Path } from './yaml-source.ts';

export const NOT_ENFORCED_YET: readonly (readonly [Path, string])[] = [
];
