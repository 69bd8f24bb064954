// The whole configuration as one schema. Descriptions here are the documentation: they generate
// config/config.schema.json, the commented sample (`config generate`) and the README reference.
import { z } from 'zod';
import { moderationConfigSchema } from '../moderation/config.ts';

/**
 * A secret may be given inline (`name`) or read from a file (`name_file`), never both.
 * The pair is declared with `secretPair` and checked by `exactlyOneOf` on the parent object.
 */
function secretPair<N extends string>(name: N, noun: string, note = '') {
  const capitalized = noun.charAt(0).toUpperCase() + noun.slice(1);
  return {
    [name]: z.string().min(1).optional().describe(`${capitalized}${note}. Give this or \`${name}_file\`, not both.`),
    [`${name}_file`]: z.string().min(1).optional().describe(`Path to a file holding ${noun} (surrounding whitespace is trimmed).`),
  } as { [K in N | `${N}_file`]: z.ZodOptional<z.ZodString> };
}

function exactlyOneOf(name: string, required: boolean) {
  return (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
    const inline = value[name] !== undefined;
    const file = value[`${name}_file`] !== undefined;
    if (inline && file) {
      ctx.addIssue({ code: 'custom', path: [name], message: `give either ${name} or ${name}_file, not both` });
    } else if (required && !inline && !file) {
      ctx.addIssue({ code: 'custom', path: [name], message: `required: give ${name} or ${name}_file` });
    }
  };
}

const url = z.url({ protocol: /^https?$/, error: 'expected an http(s) URL' });
const port = z.number().int().min(0).max(65535);
const duration = (what: string, def: number) =>
  z.number().int().positive().default(def).describe(`${what}, in seconds.`);

const http = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('Address to listen on. Put a TLS-terminating reverse proxy in front in production.'),
    port: port.default(8080).describe('TCP port to listen on (0 picks a free one).'),
    public_url: url
      .refine((u) => !URL.canParse(u) || (new URL(u).pathname === '/' && !new URL(u).search), 'expected an origin without a path, e.g. https://sso.example.org')
      .default('http://127.0.0.1:8080')
      .describe('The URL at which relying parties and browsers reach this service; it is the OpenID Connect issuer. Must be https in production (Matrix Authentication Service refuses http issuers).'),
    tls: z
      .strictObject({
        cert_file: z.string().min(1).describe('PEM certificate chain.'),
        key_file: z.string().min(1).describe('PEM private key.'),
      })
      .optional()
      .describe('Serve HTTPS directly instead of behind a TLS-terminating proxy.'),
    hsts_max_age: z
      .number()
      .int()
      .min(0)
      .default(31_536_000)
      .describe('Strict-Transport-Security max-age in seconds, sent on every response when the service terminates TLS itself (http.tls); 0 sends none. Behind a TLS-terminating proxy, the proxy sets the header.'),
    trust_proxy: z.boolean().default(false).describe('Trust X-Forwarded-* headers from a reverse proxy (needed for secure cookies behind TLS termination).'),
    shutdown_grace: duration('How long a graceful shutdown waits for in-flight requests', 10),
  })
  .describe('The HTTP listener.');

const database = z
  .strictObject({
    ...secretPair('url', 'the PostgreSQL connection URL', ', e.g. postgres://user:pass@host/db. Without it (and without DATABASE_URL) the embedded PGlite database is used'),
    data_dir: z.string().default('./data/pglite').describe('Directory of the embedded PGlite database, used when no PostgreSQL URL is given. Only one process may open it.'),
    pool_max: z.number().int().min(2).default(10).describe('Maximum PostgreSQL connections per process.'),
    connect_timeout: duration('How long to wait for a PostgreSQL connection', 5),
  })
  .superRefine(exactlyOneOf('url', false))
  .describe('Storage: PostgreSQL when a URL is given, embedded PGlite otherwise.');

const client = z
  .strictObject({
    client_id: z.string().min(1).describe('The client id the relying party presents.'),
    client_name: z.string().min(1).optional().describe('Name shown to people on the sign-in and consent pages.'),
    ...secretPair('client_secret', 'the client secret', ' (compared in constant time); omit for a public client'),
    token_endpoint_auth_method: z
      .enum(['client_secret_basic', 'client_secret_post', 'none'])
      .default('client_secret_basic')
      .describe('How the client authenticates at the token endpoint. `none` makes it a public client, which must use PKCE.'),
    redirect_uris: z.array(url).min(1).describe('Exact redirect URIs (no prefix or wildcard matching).'),
    post_logout_redirect_uris: z.array(url).default([]).describe('Exact URIs the client may return to after logout.'),
    backchannel_logout_uri: url.optional().describe('Where logout tokens are sent when a session ends (Synapse: <server>/_synapse/client/oidc/backchannel_logout).'),
    skip_consent: z.boolean().default(false).describe('First-party homeservers skip the consent page; third-party tools should show it.'),
    scopes: z.array(z.string().min(1)).default(['openid', 'profile']).describe('Scopes this client may request.'),
  })
  .superRefine((value, ctx) => {
    const hasSecret = value.client_secret !== undefined || value.client_secret_file !== undefined;
    exactlyOneOf('client_secret', value.token_endpoint_auth_method !== 'none')(value, ctx);
    if (value.token_endpoint_auth_method === 'none' && hasSecret) {
      ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'a public client (token_endpoint_auth_method: none) has no secret' });
    }
  });

const oidc = z
  .strictObject({
    cookie_keys: z
      .array(z.string().min(32, 'cookie keys need at least 32 characters'))
      .min(1)
      .optional()
      .describe('Keys that sign cookies, newest first; keep an old key listed for a while after rotating. Give this or `cookie_keys_file`, not both.'),
    cookie_keys_file: z.string().min(1).optional().describe('Path to a file with one cookie key per line, newest first.'),
    ...secretPair('key_encryption_secret', 'the secret from which the key encrypting stored signing keys is derived'),
    clients: z.array(client).default([]).describe('The relying parties (homeservers, tools) allowed to use this provider.'),
    ttl: z
      .strictObject({
        access_token: duration('Lifetime of access tokens', 3600),
        id_token: duration('Lifetime of ID tokens', 3600),
        refresh_token: duration('Lifetime of refresh tokens (each use rotates it)', 14 * 86400),
        session: duration('How long a sign-in at this service is remembered', 14 * 86400),
        interaction: duration('How long a person has to finish signing in on the wiki', 600),
      })
      .default({ access_token: 3600, id_token: 3600, refresh_token: 14 * 86400, session: 14 * 86400, interaction: 600 })
      .describe('Token and session lifetimes.'),
  })
  .superRefine(exactlyOneOf('cookie_keys', true))
  .superRefine(exactlyOneOf('key_encryption_secret', true))
  .describe('The OpenID Connect provider.');

const wiki = z
  .strictObject({
    name: z.string().min(1).default('Wikimedia').describe('Name of the wiki or wiki family, shown on pages ("Continue with …").'),
    base_url: url
      .default('https://meta.wikimedia.org/w')
      .describe('Script path of the wiki serving OAuth and the Action API (the directory holding rest.php and api.php).'),
    contact: z
      .string()
      .default('')
      .describe('Contact (email or wiki user page) put in the User-Agent, as the Wikimedia User-Agent policy requires.'),
    ...secretPair('client_secret', 'the OAuth 2 consumer secret'),
    client_id: z.string().min(1).optional().describe('The OAuth 2 consumer key from Special:OAuthConsumerRegistration.'),
    scopes: z
      .array(z.enum(['mwoauth-authonly', 'mwoauth-authonlyprivate']))
      .default(['mwoauth-authonly'])
      .describe('OAuth scopes to request: `mwoauth-authonly` (identity) or `mwoauth-authonlyprivate` (identity + email).'),
    timeout: duration('Timeout for each request to the wiki', 10),
    api_url: url.optional().describe('The Action API endpoint; defaults to `<base_url>/api.php`.'),
    maxlag: z.number().int().positive().default(5).describe('Seconds of replica lag above which the wiki should refuse our API requests (API:Etiquette); we wait and retry.'),
    max_retries: z.number().int().min(0).default(5).describe('Retries after lag, rate limiting or a transient failure before a wiki request gives up.'),
    central_auth: z
      .boolean()
      .default(true)
      .describe('Whether the wiki has CentralAuth and GlobalBlocking (all Wikimedia wikis do): global locks and blocks are then read too.'),
    api_user: z
      .string()
      .regex(/^[^@]+@[^@]+$/, 'expected a bot password name, User@botname (Special:BotPasswords)')
      .optional()
      .describe('Bot password name (`User@botname`, from Special:BotPasswords) the Action API client signs in with. Needed for a private wiki, and to see blocks that hide the name (the account then needs `hideuser`, and the bot password a grant carrying it). Anonymous when not set.'),
    ...secretPair('api_password', 'the bot password of api_user'),
  })
  .superRefine(exactlyOneOf('client_secret', false))
  .superRefine(exactlyOneOf('api_password', false))
  .superRefine((value, ctx) => {
    const password = value.api_password !== undefined || value.api_password_file !== undefined;
    if (value.api_user !== undefined && !password) ctx.addIssue({ code: 'custom', path: ['api_password'], message: 'required with api_user: give api_password or api_password_file' });
    if (value.api_user === undefined && password) ctx.addIssue({ code: 'custom', path: ['api_user'], message: 'required with api_password: the bot password name, User@botname' });
  })
  .superRefine((value, ctx) => {
    if (value.client_id !== undefined && value.client_secret === undefined && value.client_secret_file === undefined) {
      ctx.addIssue({ code: 'custom', path: ['client_secret'], message: 'Extension:OAuth checks the consumer secret on every token request: give client_secret or client_secret_file' });
    }
    if (value.client_id !== undefined && value.contact.trim() === '') {
      ctx.addIssue({ code: 'custom', path: ['contact'], message: 'required with client_id: the Wikimedia User-Agent policy asks for a contact (an email address or a wiki user page)' });
    }
  })
  .describe('The MediaWiki that accounts come from.');

const login = z
  .strictObject({
    blocked: z
      .enum(['any', 'sitewide', 'never'])
      .default('sitewide')
      .describe('Refuse blocked accounts: `any` block, `sitewide` blocks only (partial blocks may sign in; checked through the Action API), or `never`.'),
    min_edit_count: z.number().int().min(0).default(0).describe('Refuse accounts with fewer edits than this.'),
    min_account_age_days: z.number().int().min(0).default(0).describe('Refuse accounts registered fewer than this many days ago.'),
    required_groups: z.array(z.string().min(1)).default([]).describe('If not empty, only members of at least one of these wiki groups may sign in.'),
    forbidden_groups: z.array(z.string().min(1)).default([]).describe('Members of any of these wiki groups may not sign in.'),
  })
  .describe('Who may sign in. Unattached (no central account) and hidden accounts are always refused; each refusal shows the person why.');

const identity = z
  .strictObject({
    wiki_id: z
      .string()
      .regex(/^[a-z0-9.-]+$/, 'expected a lowercase host-like name')
      .optional()
      .describe('Key under which accounts are stored; defaults to the host of wiki.base_url. Never change it once people have signed in.'),
    reserved_names: z.array(z.string().min(1)).default([]).describe('Localparts never given to a wiki user, added to the built-in list (admin, bots, bridges…). Add your own bots here.'),
    reserved_prefixes: z.array(z.string().min(1)).default([]).describe('Localpart prefixes never given to a wiki user, e.g. an appservice namespace such as `irc_`. `_` is always reserved.'),
  })
  .describe('How wiki accounts map to Matrix IDs.');

const pages = z
  .strictObject({
    service_name: z.string().min(1).default('Matrix').describe('What people sign in to, shown on every page (e.g. "Wikimedia Chat").'),
  })
  .describe('The sign-in, consent and logout pages.');

const matrix = z
  .strictObject({
    homeserver_url: url.optional().describe('Client-server API base URL of the homeserver.'),
    server_name: z
      .string()
      .regex(/^[A-Za-z0-9.:\[\]-]+$/, 'expected a server name such as example.org or example.org:8448')
      .describe('The homeserver\'s server name (the part after ":" in Matrix IDs).'),
    ...secretPair('access_token', 'the access token of the service\'s bot account'),
    user_id: z.string().regex(/^@[^:]+:.+$/, 'expected a Matrix ID such as @wikibot:example.org').optional().describe('The bot\'s Matrix ID; asked of the homeserver (whoami) when not given.'),
    request_timeout: duration('Timeout for each request to the homeserver', 30),
    max_attempts: z.number().int().min(1).default(5).describe('Tries per homeserver request on transient failures (5xx, network).'),
    max_rate_limit_wait: duration('Longest rate-limit wait (M_LIMIT_EXCEEDED retry_after_ms) honoured in place before giving up until the next pass', 60),
    synapse_idp_id: z
      .string()
      .regex(/^oidc-[A-Za-z0-9._~-]+$/, 'expected Synapse\'s name for the provider: "oidc-" and the idp_id of homeserver.yaml, e.g. oidc-wikimedia')
      .optional()
      .describe('When the homeserver is Synapse: its name for this provider ("oidc-" + the idp_id in homeserver.yaml, e.g. oidc-wikimedia). Moderation then acts on the Matrix ID Synapse reports for each account (admin API; the bot must be a Synapse admin) and leaves out accounts that never signed in there. Without it, Matrix IDs are taken to be @<localpart>:<server_name>, as on MAS.'),
    mas: z
      .strictObject({
        base_url: url.describe('Where the service reaches MAS\'s admin API (`/api/admin/v1`, the `adminapi` resource) and its token endpoint (`/oauth2/token`, the `oauth` resource): `http.public_base`, or a listener of its own that serves both.'),
        client_id: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'expected the ULID of a client in MAS\'s `clients` list').describe('A MAS client listed in `policy.data.admin_clients`, with `client_auth_method: client_secret_basic`: the service gets admin tokens with the client credentials grant (scope `urn:mas:admin`).'),
        ...secretPair('client_secret', 'that client\'s secret'),
      })
      .superRefine(exactlyOneOf('client_secret', true))
      .optional()
      .describe('When the homeserver delegates its accounts to Matrix Authentication Service (MAS 1.6 or later): ending a person\'s sessions finishes every session they have at MAS (compatibility, OAuth 2.0 and browser sessions, and revokes their personal access tokens), and a suspension locks the MAS user, instead of Synapse\'s device and suspension calls.'),
  })
  .superRefine(exactlyOneOf('access_token', false))
  .describe('The Matrix homeserver whose users this service identifies and moderates.');

const sync = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Run moderation mirroring in the worker.'),
    dry_run: z.boolean().default(true).describe('Plan and record actions without changing anything in Matrix.'),
    full_pass_interval: duration('Interval between full reconciliation passes', 3600),
    poll_interval: duration('Interval between polls of the wiki\'s block, rights and global account logs', 30),
    event_streams: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Also listen to Wikimedia EventStreams for block, rights and lock events as they happen (polling keeps working without it).'),
        url: url.default('https://stream.wikimedia.org/v2/stream/recentchange').describe('The recentchange stream.'),
        wiki: z.string().min(1).optional().describe('Only events of this wiki (the `wiki` field, e.g. `metawiki`); all wikis when not set.'),
      })
      .default({ enabled: false, url: 'https://stream.wikimedia.org/v2/stream/recentchange' })
      .describe('Real-time triggers from EventStreams (Server-Sent Events, resumed with Last-Event-ID).'),
    moderation_room: z.string().regex(/^!.+/, 'expected a room id such as !abc:example.org').optional().describe('Room where a concise notice of each batch of mirrored actions is posted.'),
  })
  .describe('Moderation mirroring.');

const adminApiToken = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a short name of letters, digits, ".", "_" or "-"').describe('Who holds the token, shown in the audit of what it did.'),
    sha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/, 'expected the SHA-256 of the token in 64 lowercase hex digits: printf %s "$TOKEN" | sha256sum')
      .describe('The SHA-256 of the token, in hex: the token itself is never stored.'),
    scopes: z.array(z.enum(['read', 'write'])).min(1).default(['read']).describe('`read`: look people and actions up; `write`: also retry, apply plans, set localparts.'),
  })
  .describe('A bearer token for the admin API.');

const admin = z
  .strictObject({
    ...secretPair('token', 'a bearer token for the admin API with both scopes, named "admin" (the `whois` and `sync` commands present it to a running service)'),
    api_tokens: z.array(adminApiToken).default([]).describe('Bearer tokens for the admin API, stored hashed, each with a name and scopes.'),
    users: z.array(z.string().min(1)).default([]).describe('Wiki usernames who may use the admin pages (any spelling the wiki accepts).'),
    groups: z.array(z.string().min(1)).default([]).describe('Wiki groups whose members may use the admin pages, e.g. `sysop`; checked against the wiki at each admin sign-in.'),
    session_lifetime: duration('How long an admin page session lasts before signing in again', 3600),
  })
  .superRefine(exactlyOneOf('token', false))
  .superRefine((value, ctx) => {
    const names = value.api_tokens.map((t) => t.name);
    for (const name of new Set(names.filter((n, i) => names.indexOf(n) !== i))) ctx.addIssue({ code: 'custom', path: ['api_tokens'], message: `two tokens are named "${name}"` });
  })
  .describe('Admin pages (`/admin`, for `users` and `groups`) and the admin JSON API (`/admin/api/v1`, for bearer tokens).');

const metrics = z
  .strictObject({
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .optional()
      .describe('Port of a listener of its own serving Prometheus metrics at `/metrics`; off when not set. `serve` and `worker` each serve their own, so give each process its own port (0 picks a free one).'),
    host: z.string().min(1).default('127.0.0.1').describe('Address the metrics listener binds to: loopback by default, since the figures are for operators (put a proxy or a firewall rule in front to scrape from elsewhere).'),
  })
  .describe('Prometheus metrics: sign-ins by outcome, wiki latency and errors, tokens issued, sync lag, passes, actions, rate-limit waits, leadership, and the process.');

const retention = z
  .strictObject({
    days: z
      .number()
      .int()
      .min(1)
      .default(180)
      .describe('How long operational data about people is kept, in days (the project standard is 180): sign-in records, the provider\'s sessions and tokens, cached wiki profiles, and the details of audit entries (who, why, error, detail; what was done, where and when stays, so counts remain right) are purged after this by the worker\'s leader, hourly. Accounts and the moderation records of sanctions in force are kept while they are needed; `forget` removes a person at once.'),
  })
  .describe('Retention of personal data (see README, Privacy and retention).');

const logging = z
  .strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Minimum level logged.'),
  })
  .describe('Structured JSON logs on stdout.');

export const configSchema = z
  .strictObject({
    http: http.default(() => http.parse({})),
    database: database.default(() => database.parse({})),
    oidc,
    wiki: wiki.default(() => wiki.parse({})),
    login: login.default(() => login.parse({})),
    identity: identity.default(() => identity.parse({})),
    pages: pages.default(() => pages.parse({})),
    matrix,
    sync: sync.default(() => sync.parse({})),
    moderation: moderationConfigSchema.default(() => moderationConfigSchema.parse({})),
    admin: admin.default(() => admin.parse({})),
    metrics: metrics.default(() => metrics.parse({})),
    retention: retention.default(() => retention.parse({})),
    logging: logging.default(() => logging.parse({})),
  })
  .describe('wiki-matrix-sso configuration');

export type ConfigInput = z.input<typeof configSchema>;
export type ParsedConfig = z.output<typeof configSchema>;
