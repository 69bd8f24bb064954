// The wiki for the login benchmark, in a process of its own so that its CPU is neither the
// service's nor the load driver's: test/support's OAuth 2 double of Extension:OAuth, served
// standalone. Every authorization is a random editor of the pool (as though each browser were
// logged in to the wiki as someone else), who approves.
//
//   node bench/login/wiki.ts <redirect_uri> <users>
// prints one JSON line, {"baseUrl": …}, once it listens; stops on SIGTERM or when stdin closes.
import { WikiOAuthDouble, type LoginScript } from '../../test/support/wiki-oauth-double.ts';
import { BENCH_CONSUMER, benchWikiUser } from './users.ts';

const [redirectUri, usersArg] = process.argv.slice(2);
const users = Number(usersArg);
if (!redirectUri || !Number.isInteger(users) || users < 1) {
  process.stderr.write('usage: node bench/login/wiki.ts <redirect_uri> <users>\n');
  process.exit(2);
}

const wiki = await WikiOAuthDouble.start({
  consumers: [{ ...BENCH_CONSUMER, confidential: true, redirectUri, grants: ['mwoauth-authonlyprivate'] }],
});
Object.defineProperty(wiki, 'login', {
  get: (): LoginScript => ({ user: benchWikiUser(1 + Math.floor(Math.random() * users)) }),
  set: () => {},
});
// The double keeps every request for tests to read; a benchmark has no use for them.
setInterval(() => (wiki.requests.length = 0), 1000).unref();

const stop = () => void wiki.close().finally(() => process.exit(0));
process.once('SIGTERM', stop).once('SIGINT', stop);
process.stdin.on('end', stop).resume();
process.stdout.write(`${JSON.stringify({ baseUrl: wiki.baseUrl })}\n`);
