import * as assert from 'uvu/assert';
import { LineReader } from '../../../runtime/lines.js';
import { describe } from '../../helpers/test.js';

const test = describe('runtime/lines', 2000);

function reader(max?: number) {
  const lines: string[] = [];
  return { lines, r: new LineReader((l) => lines.push(l), max) };
}

test('splits chunks into lines wherever the chunks are cut, keeping the unfinished rest', () => {
  const { lines, r } = reader();
  for (const chunk of ['{"a":', '1}\n{"b"', ':2}\n\n{"c":3', '}\n']) assert.ok(r.push(chunk));
  assert.equal(lines, ['{"a":1}', '{"b":2}', '', '{"c":3}']);
});

test('a line over the bound is refused the same whether it comes whole or in pieces', () => {
  const whole = reader(8);
  assert.not.ok(whole.r.push('short\n0123456789\nlater\n'));
  assert.equal(whole.lines, ['short'], 'lines before it are delivered, nothing after');
  assert.ok(whole.r.oversize);
  assert.not.ok(whole.r.push('more\n'), 'the rest of the stream is ignored');
  const pieces = reader(8);
  assert.ok(pieces.r.push('0123'));
  assert.not.ok(pieces.r.push('45678'), 'an unfinished line over the bound is refused at once');
  assert.equal(pieces.lines, []);
});

test('the bound counts UTF-8 bytes, not UTF-16 units', () => {
  const { lines, r } = reader(8);
  assert.not.ok(r.push('ééééé\n'), 'five é are 10 bytes');
  assert.equal(lines, []);
  const ok = reader(10);
  assert.ok(ok.r.push('ééééé\n'));
  assert.equal(ok.lines, ['ééééé']);
});

test.run();
