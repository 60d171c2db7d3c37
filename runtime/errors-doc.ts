/**
 * docs/errors.md, rendered from the catalogue (runtime/errors.ts): written
 * by `npm run docs`, and held equal to the file by test/unit/runtime/errors.
 */
import { CLOSE_CODES, ERROR_CODES } from './errors.js';

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes and close codes',
    '',
    '<!-- Generated from runtime/errors.ts by `npm run docs`; a test keeps it equal. Do not edit. -->',
    '',
    'Every error meshnode raises on purpose carries one of these codes: the admin API answers',
    '`{"ok":false,"error":{"code","message"}}`, the CLI prints `error CODE: message` and `--json`',
    'gives the same object. Match on the code; messages may change.',
    '',
    '| Code | Meaning |',
    '| --- | --- |',
    ...Object.entries(ERROR_CODES).map(([code, doc]) => `| \`${code}\` | ${cell(doc)} |`),
    '',
    '## Gossip link close codes',
    '',
    "A gossip link ends with a WebSocket close code (RFC 6455; 4000–4999 are meshnode's); the",
    'reason text says more. Where a code has an error code, the refusal is logged and counted',
    'under it.',
    '',
    '| Close code | Name | Error code | Meaning |',
    '| --- | --- | --- | --- |',
    ...Object.entries(CLOSE_CODES).map(([name, c]) => {
      const error = 'error' in c ? `\`${c.error}\`` : '';
      return `| ${c.code} | ${name} | ${error} | ${cell(c.doc)} |`;
    }),
    '',
  ];
  return lines.join('\n');
}

/** Table cells: a pipe would end the cell. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}
