// A port of Synapse's `map_username_to_mxid_localpart` (synapse/types/__init__.py, 1.163), which
// Synapse's OIDC handler applies to every templated localpart: lowercase (ASCII only: it works on
// UTF-8 bytes), then `=xx` for every byte outside `a-z 0-9 _ - . / +` (so `=` too), then `=5f` for
// a leading `_`. test/unit/localpart.test.ts checks it against the real function's outputs.
const ALLOWED = new Set([...'_-./+abcdefghijklmnopqrstuvwxyz0123456789'].map((c) => c.charCodeAt(0)));

export function synapseMapUsername(username: string): string {
  let out = '';
  for (let byte of new TextEncoder().encode(username)) {
    if (byte >= 0x41 && byte <= 0x5a) byte += 0x20;
    out += ALLOWED.has(byte) ? String.fromCharCode(byte) : `=${byte.toString(16).padStart(2, '0')}`;
  }
  return out.replace(/^_/, '=5f');
}
