// The editors the benchmark signs in: central ids 1…N, named in several scripts (the service
// transliterates Cyrillic, Hebrew and CJK names into localparts), the same way for the accounts
// stored before the run and for the wiki double that vouches for them during it.
import type { WikiUser } from '../../test/support/wiki-oauth-double.ts';

/** The wiki OAuth 2 consumer the service is registered as. */
export const BENCH_CONSUMER = { clientId: 'bench-consumer', clientSecret: 'bench-consumer-secret' };

const NAMES = ['Ярослава Петренко', 'משתמשת ותיקה', '編輯者', 'Ådne Ørsted', 'Zoë Ñúñez'];

/** The wiki username of central id `id` (≥ 1); canonical as MediaWiki shows it (first letter upper case). */
export function benchUsername(id: number): string {
  return `${NAMES[id % NAMES.length]} ${id}`;
}

export function benchWikiUser(id: number): WikiUser {
  return {
    centralId: id,
    username: benchUsername(id),
    editCount: 50 + (id % 5000),
    emailConfirmed: true,
    email: `editor${id}@example.org`,
    registered: '20200101000000',
    groups: id % 50 === 0 ? ['sysop'] : [],
  };
}
