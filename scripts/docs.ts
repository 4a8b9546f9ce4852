// `npm run docs`: rewrites README.md's generated sections (see readme-sections.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { renderReadme } from './readme-sections.ts';

const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = renderReadme(before);
writeFileSync(file, after);
process.stdout.write(before === after ? 'README.md is up to date\n' : 'README.md updated\n');
