/**
 * Hostile values for the nft executor's fields, shared by the unit,
 * memory-backend and kernel tests: each must be refused with its code and
 * nothing applied. Shell and nft metacharacters, statement breaks,
 * newlines, NUL, look-alike and invisible unicode, and 10 kB strings.
 */

const HOSTILE = [
  '; flush ruleset',
  '10.0.0.1; flush ruleset',
  '10.0.0.1 } ; flush ruleset ; add element inet meshnode tcp_22_v4 { 10.0.0.2',
  '$(reboot)',
  '`id`',
  '10.0.0.1\nflush ruleset',
  '10.0.0.1\r\n',
  'fd00::1\u0000',
  'include "/etc/passwd"',
  '@tcp_22_v4',
  '10.0.0.1 # comment',
  '{ 10.0.0.2 }',
  '\uff11\uff10.0.0.1',
  '10.0.0.1\u200b',
  'fd00::1\u202e',
  '\u0661\u0660.0.0.1',
  'a'.repeat(10_240),
  '10.0.0.1'.padEnd(10_240, ' '),
  'tcp',
  '22',
  '',
];

const CODES: Record<string, string> = {
  ip: 'ERR_NFT_BAD_IP',
  proto: 'ERR_NFT_BAD_PROTO',
  port: 'ERR_NFT_BAD_PORT',
  leaseSeconds: 'ERR_NFT_BAD_LEASE',
};

/** Every hostile value in every field of an add, with the code it must get. */
export const INJECTIONS: Array<{ field: string; value: string; code: string }> = Object.entries(
  CODES,
).flatMap(([field, code]) =>
  HOSTILE.filter((value) => !(field === 'proto' && value === 'tcp')).map((value) => ({
    field,
    value,
    code,
  })),
);
