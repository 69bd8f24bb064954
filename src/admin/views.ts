// The admin pages, server-rendered like the sign-in pages: Codex tokens, every message through
// banana-i18n (so every shipped language, right-to-left included), no scripts at all, forms that
// post a CSRF token. Each function takes the API's JSON model (read.ts), so the pages show exactly
// what the API answers.
import { type SafeHtml, html, isSafeUrl } from '../views/html.ts';
import { type Translator } from '../views/i18n.ts';
import { documentStart, type Site } from '../views/layout.ts';
import type { ActionJson, CauseJson, PersonJson, RequestJson, SanctionJson, SyncJson } from './read.ts';

export type Section = 'activity' | 'people' | 'preview' | 'overrides';

export interface Chrome {
  i18n: Translator;
  site: Site;
  /** Signed in: the username and the session's CSRF token for the forms. */
  admin?: { username: string; csrf: string };
  section?: Section;
  /** Reload after this many seconds (a request the worker is still running). */
  refresh?: number;
  /** A confirmation or a problem, shown above the page's body. */
  flash?: { kind: 'success' | 'error'; message: SafeHtml };
}

const NAV: readonly [Section, string, string][] = [
  ['activity', '/admin', 'wikimatrixsso-admin-nav-activity'],
  ['people', '/admin/people', 'wikimatrixsso-admin-nav-people'],
  ['preview', '/admin/preview', 'wikimatrixsso-admin-nav-preview'],
  ['overrides', '/admin/overrides', 'wikimatrixsso-admin-nav-overrides'],
];

export function adminPage(chrome: Chrome, title: { key: string; params?: (string | number)[] }, body: SafeHtml): string {
  const { i18n, site, admin } = chrome;
  const { t } = i18n;
  const params = title.params ?? [];
  return html`${documentStart(i18n, site, { key: title.key, params }, chrome.refresh ? html`<meta http-equiv="refresh" content="${chrome.refresh}">
` : '')}<body class="wms-admin-body">
<header class="wms-admin-header">
<p class="wms-admin-header__service">${site.serviceName}</p>
${admin
  ? html`<nav class="wms-admin-nav" aria-label="${i18n.text('wikimatrixsso-admin-nav-label')}"><ul class="wms-admin-nav__list">
${NAV.map(([section, href, key]) => html`<li><a class="wms-admin-nav__link" href="${href}"${chrome.section === section ? html` aria-current="page"` : ''}>${t(key)}</a></li>`)}
</ul></nav>
<div class="wms-admin-header__who"><span>${t('wikimatrixsso-admin-signed-in-as', admin.username)}</span>
<form method="post" action="/admin/logout">${csrfField(admin.csrf)}<button type="submit" class="wms-button wms-button--quiet"><span class="wms-button__label">${t('wikimatrixsso-admin-sign-out')}</span></button></form></div>`
  : ''}
</header>
<main class="wms-admin-main" aria-labelledby="wms-title">
<h1 id="wms-title" class="wms-card__title">${t(title.key, ...params)}</h1>
${chrome.flash ? html`<div class="wms-message wms-message--${chrome.flash.kind === 'success' ? 'notice' : 'error'}" role="${chrome.flash.kind === 'success' ? 'status' : 'alert'}"><p class="wms-message__content">${chrome.flash.message}</p></div>` : ''}
${body}
</main>
</body>
</html>
`.html;
}

const csrfField = (csrf: string) => html`<input type="hidden" name="csrf" value="${csrf}">`;

/** A POST button with the CSRF token and hidden fields. */
function postButton(chrome: Chrome, action: string, label: SafeHtml, fields: Record<string, string> = {}, primary = false): SafeHtml {
  return html`<form class="wms-inline-form" method="post" action="${action}">${csrfField(chrome.admin!.csrf)}${Object.entries(fields).map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}<button type="submit" class="wms-button${primary ? ' wms-button--primary' : ''}"><span class="wms-button__label">${label}</span></button></form>`;
}

/** A time as UTC, machine-readable too. */
export function time(iso: string | null | undefined, i18n: Translator): SafeHtml {
  if (!iso) return i18n.t('wikimatrixsso-admin-never');
  return html`<time datetime="${iso}">${iso.replace('T', ' ').replace(/:\d\d(?:\.\d+)?Z$/, '')}</time>`;
}

const code = (value: string | null | undefined) => (value ? html`<code class="wms-code">${value}</code>` : html`–`);

/** The person's page for a Matrix ID: what moderation-room notices link to. */
export const personHref = (query: string) => `/admin/people?q=${encodeURIComponent(query)}`;

function personLink(userId: string | null): SafeHtml {
  return userId ? html`<a href="${personHref(userId)}"><bdi>${userId}</bdi></a>` : html`–`;
}

export function causeText(cause: CauseJson | null, i18n: Translator): SafeHtml {
  if (!cause) return html`–`;
  const { t } = i18n;
  if (cause.hidden) return html`${code(cause.kind)} ${t('wikimatrixsso-admin-cause-hidden')}`;
  const parts: SafeHtml[] = [code(cause.group ? `${cause.kind}:${cause.group}` : cause.kind)];
  if (cause.blockId !== null) parts.push(t('wikimatrixsso-admin-cause-block', String(cause.blockId)));
  if (cause.logId !== null) parts.push(t('wikimatrixsso-admin-cause-log', String(cause.logId)));
  if (cause.by) parts.push(t('wikimatrixsso-admin-cause-by', cause.by));
  if (cause.kind !== 'group') parts.push(cause.expiry ? t('wikimatrixsso-admin-cause-expires', time(cause.expiry, i18n)) : t('wikimatrixsso-admin-cause-indefinite'));
  return html`${parts.map((p, i) => html`${i ? ', ' : ''}${p}`)}${cause.reason ? html`: <q class="wms-admin-reason"><bdi>${cause.reason}</bdi></q>` : ''}`;
}

function outcomeBadge(outcome: string): SafeHtml {
  const tone = outcome === 'failed' || outcome === 'lacks_power' ? 'error' : outcome === 'applied' ? 'success' : 'neutral';
  return html`<span class="wms-badge wms-badge--${tone}">${outcome}</span>`;
}

function actionsTable(chrome: Chrome, entries: readonly ActionJson[], options: { person?: boolean; retry?: boolean }): SafeHtml {
  const { t } = chrome.i18n;
  if (entries.length === 0) return html`<p class="wms-note">${t('wikimatrixsso-admin-no-actions')}</p>`;
  return html`<div class="wms-table-wrap"><table class="wms-table">
<thead><tr><th scope="col">${t('wikimatrixsso-admin-col-time')}</th><th scope="col">${t('wikimatrixsso-admin-col-action')}</th><th scope="col">${t('wikimatrixsso-admin-col-room')}</th>${options.person ? html`<th scope="col">${t('wikimatrixsso-admin-col-person')}</th>` : ''}<th scope="col">${t('wikimatrixsso-admin-col-cause')}</th><th scope="col">${t('wikimatrixsso-admin-col-result')}</th></tr></thead>
<tbody>
${entries.map(
  (e) => html`<tr id="action-${e.id}"><td>${time(e.at, chrome.i18n)}</td><td>${code(e.kind)}${e.dry_run ? html` <span class="wms-badge wms-badge--neutral">dry_run</span>` : ''}${actionDetail(e)}</td><td>${code(e.room_id)}</td>${options.person ? html`<td>${personLink(e.user_id)}</td>` : ''}<td>${causeText(e.cause, chrome.i18n)}</td>
<td>${outcomeBadge(e.outcome)}${e.error ? html`<br><span class="wms-admin-error"><bdi>${e.error}</bdi></span>` : ''}${options.retry && chrome.admin && (e.outcome === 'failed' || e.outcome === 'lacks_power') && e.user_id ? postButton(chrome, `/admin/actions/${e.id}/retry`, t('wikimatrixsso-admin-retry')) : ''}</td></tr>`,
)}
</tbody></table></div>`;
}

/** What the detail says in a word or two (a level change, who set a localpart). */
function actionDetail(e: ActionJson): SafeHtml {
  const d = e.detail;
  if (e.kind === 'set_power_levels' && Array.isArray(d.changes)) {
    const changes = d.changes as { userId?: string; from?: number | null; to?: number | null }[];
    return html`<br><small>${changes.map((c, i) => html`${i ? ', ' : ''}${c.from ?? 'default'} → ${c.to ?? 'default'}`)}</small>`;
  }
  if (e.kind === 'localpart_override') return html`<br><small><bdi>${String(d.username ?? '')}</bdi> → ${code(typeof d.localpart === 'string' ? d.localpart : null)} (<bdi>${String(d.by ?? '')}</bdi>)</small>`;
  return html``;
}

export interface ActivityModel {
  filters: { room?: string; user?: string; kind?: string; outcome?: string; since?: string; until?: string };
  entries: readonly ActionJson[];
  /** Query string of the next (older) page, or undefined on the last. */
  nextQuery: string | undefined;
  first: boolean;
  sync: SyncJson;
}

const ACTION_KINDS = ['ban', 'unban', 'kick', 'invite', 'set_power_levels', 'suspend', 'unsuspend', 'end_sessions', 'backchannel_logout', 'publish_policy', 'retract_policy', 'forget', 'report', 'localpart_override'];
const OUTCOMES = ['applied', 'unchanged', 'dry_run', 'failed', 'lacks_power', 'reported'];

export function activityBody(chrome: Chrome, model: ActivityModel): SafeHtml {
  const { t } = chrome.i18n;
  const f = model.filters;
  const select = (name: string, label: string, values: readonly string[], current: string | undefined) =>
    html`<div class="wms-field"><label class="wms-field__label" for="f-${name}">${t(label)}</label><select class="wms-select" id="f-${name}" name="${name}"><option value="">${t('wikimatrixsso-admin-filter-any')}</option>${values.map((v) => html`<option value="${v}"${v === current ? html` selected` : ''}>${v}</option>`)}</select></div>`;
  const input = (name: string, label: string, value: string | undefined, type = 'text') =>
    html`<div class="wms-field"><label class="wms-field__label" for="f-${name}">${t(label)}</label><input class="wms-input" id="f-${name}" name="${name}" type="${type}" value="${value ?? ''}"${type === 'text' ? html` dir="ltr"` : ''}></div>`;
  return html`${syncBox(chrome, model.sync)}
<section aria-labelledby="filters-heading" class="wms-admin-section">
<h2 id="filters-heading" class="wms-subheading">${t('wikimatrixsso-admin-filter-legend')}</h2>
<form class="wms-filters" method="get" action="/admin">
${input('room', 'wikimatrixsso-admin-filter-room', f.room)}
${input('user', 'wikimatrixsso-admin-filter-person', f.user)}
${select('kind', 'wikimatrixsso-admin-filter-action', ACTION_KINDS, f.kind)}
${select('outcome', 'wikimatrixsso-admin-filter-result', OUTCOMES, f.outcome)}
${input('since', 'wikimatrixsso-admin-filter-since', f.since, 'datetime-local')}
${input('until', 'wikimatrixsso-admin-filter-until', f.until, 'datetime-local')}
<div class="wms-field wms-field--button"><button type="submit" class="wms-button wms-button--primary"><span class="wms-button__label">${t('wikimatrixsso-admin-filter-apply')}</span></button></div>
</form>
</section>
${actionsTable(chrome, model.entries, { person: true, retry: true })}
<nav class="wms-pager" aria-label="${chrome.i18n.text('wikimatrixsso-admin-older')}">
${model.first ? '' : html`<a class="wms-button" href="/admin?${pagerQuery(model.filters)}"><span class="wms-button__label">${t('wikimatrixsso-admin-newest')}</span></a>`}
${model.nextQuery ? html`<a class="wms-button" href="/admin?${model.nextQuery}" rel="next"><span class="wms-button__label">${t('wikimatrixsso-admin-older')}</span></a>` : ''}
</nav>`;
}

export function pagerQuery(filters: ActivityModel['filters'], before?: string): string {
  const q = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1] !== ''));
  if (before) q.set('before', before);
  return q.toString();
}

function syncBox(chrome: Chrome, sync: SyncJson): SafeHtml {
  const { i18n } = chrome;
  const { t } = i18n;
  const leader = sync.leader;
  const row = (label: string, value: SafeHtml | string) => html`<div class="wms-dl__row"><dt>${t(label)}</dt><dd>${value}</dd></div>`;
  const state = !sync.enabled
    ? html`<p class="wms-note">${t('wikimatrixsso-admin-sync-off')}</p>`
    : !leader
      ? html`<div class="wms-message wms-message--warning" role="status"><p class="wms-message__content">${t('wikimatrixsso-admin-sync-none')}</p></div>`
      : html`<dl class="wms-dl">
${row('wikimatrixsso-admin-sync-leader', code(leader.holder))}
${row('wikimatrixsso-admin-sync-reported', time(leader.reported_at, i18n))}
${row('wikimatrixsso-admin-sync-last-pass', leader.last_full_pass ? html`${time(leader.last_full_pass.at, i18n)} ${code(leader.last_full_pass.pass_id)}` : t('wikimatrixsso-admin-never'))}
${row('wikimatrixsso-admin-sync-next-pass', time(leader.next_full_pass_at, i18n))}
${row('wikimatrixsso-admin-sync-last-poll', leader.last_poll_at ? html`${time(leader.last_poll_at, i18n)} (${t('wikimatrixsso-admin-sync-lag', leader.lag_seconds ?? 0)})` : t('wikimatrixsso-admin-never'))}
${row('wikimatrixsso-admin-sync-eventstreams', t(`wikimatrixsso-admin-sync-eventstreams-${leader.event_streams}`))}
${leader.last_error ? row('wikimatrixsso-admin-sync-last-error', html`${time(leader.last_error.at, i18n)}: <bdi>${leader.last_error.message}</bdi>`) : ''}
</dl>`;
  return html`<section aria-labelledby="sync-heading" class="wms-admin-section wms-admin-panel">
<h2 id="sync-heading" class="wms-subheading">${t('wikimatrixsso-admin-sync-heading')}</h2>
${sync.dry_run && sync.enabled ? html`<p class="wms-note">${t('wikimatrixsso-admin-sync-dry-run')}</p>` : ''}
${state}
${sync.cursors.length
  ? html`<h3 class="wms-subheading">${t('wikimatrixsso-admin-sync-cursors')}</h3><div class="wms-table-wrap"><table class="wms-table"><thead><tr><th scope="col">${t('wikimatrixsso-admin-sync-cursor-name')}</th><th scope="col">${t('wikimatrixsso-admin-sync-cursor-position')}</th><th scope="col">${t('wikimatrixsso-admin-sync-reported')}</th></tr></thead><tbody>
${sync.cursors.map((c) => html`<tr><td>${code(c.name)}</td><td>${cursorPosition(c.position, i18n)}</td><td>${time(c.updated_at, i18n)}</td></tr>`)}
</tbody></table></div>`
  : ''}
<h3 class="wms-subheading">${t('wikimatrixsso-admin-lacks-power-heading')}</h3>
${sync.rooms_lacking_power.length ? html`<ul>${sync.rooms_lacking_power.map((r) => html`<li>${code(r)}</li>`)}</ul>` : html`<p class="wms-note">${t('wikimatrixsso-admin-lacks-power-none')}</p>`}
</section>`;
}

function cursorPosition(position: unknown, i18n: Translator): SafeHtml {
  if (position && typeof position === 'object' && 'timestamp' in position) {
    const p = position as { timestamp: string; logId?: number };
    return html`${time(p.timestamp, i18n)}${p.logId ? html` (#${String(p.logId)})` : ''}`;
  }
  return code(typeof position === 'string' ? position : JSON.stringify(position));
}

export function searchForm(chrome: Chrome, query: string): SafeHtml {
  const { t } = chrome.i18n;
  return html`<form class="wms-filters" method="get" action="/admin/people" role="search">
<div class="wms-field wms-field--wide"><label class="wms-field__label" for="q">${t('wikimatrixsso-admin-search-label')}</label><input class="wms-input" id="q" name="q" type="search" value="${query}" required></div>
<div class="wms-field wms-field--button"><button type="submit" class="wms-button wms-button--primary"><span class="wms-button__label">${t('wikimatrixsso-admin-search-button')}</span></button></div>
</form>`;
}

export function personBody(chrome: Chrome, person: PersonJson, olderHref: string | undefined): SafeHtml {
  const { i18n } = chrome;
  const { t } = i18n;
  const row = (label: string, value: SafeHtml) => html`<div class="wms-dl__row"><dt>${t(label)}</dt><dd>${value}</dd></div>`;
  const profile = person.wiki_profile;
  return html`<section aria-labelledby="identity-heading" class="wms-admin-section">
<h2 id="identity-heading" class="wms-subheading">${t('wikimatrixsso-admin-person-identity')}</h2>
<dl class="wms-dl">
${row('wikimatrixsso-admin-person-username', html`<bdi>${person.username}</bdi>${person.renamed_from ? html` <small>(${t('wikimatrixsso-admin-person-renamed-from', person.renamed_from)})</small>` : ''}`)}
${row('wikimatrixsso-admin-person-central-id', code(person.central_id))}
${row(
  'wikimatrixsso-admin-person-matrix-id',
  html`${code(person.matrix_id)}${person.matrix_id_confirmed ? '' : html` <small>(${t('wikimatrixsso-admin-person-matrix-id-unconfirmed')})</small>`}${person.proposed_matrix_id ? html`<br><small>${t('wikimatrixsso-admin-person-proposed', person.proposed_matrix_id)}</small>` : ''}${person.localpart_set_by ? html`<br><small>${t('wikimatrixsso-admin-person-localpart-set-by', person.localpart_set_by)}</small>` : ''}`,
)}
${row('wikimatrixsso-admin-person-first-sign-in', time(person.first_sign_in, i18n))}
${row('wikimatrixsso-admin-person-last-sign-in', time(person.last_sign_in, i18n))}
</dl>
</section>
${profile
  ? html`<section aria-labelledby="wiki-heading" class="wms-admin-section">
<h2 id="wiki-heading" class="wms-subheading">${t('wikimatrixsso-admin-person-wiki', time(profile.seen_at, i18n))}</h2>
<dl class="wms-dl">
${row('wikimatrixsso-admin-person-groups', profile.groups.length ? html`${profile.groups.map((g, i) => html`${i ? ', ' : ''}${code(g)}`)}` : t('wikimatrixsso-admin-person-no-groups'))}
${row('wikimatrixsso-admin-person-edit-count', html`${String(profile.edit_count)}`)}
</dl>
</section>`
  : ''}
<section aria-labelledby="sanctions-heading" class="wms-admin-section">
<h2 id="sanctions-heading" class="wms-subheading">${t('wikimatrixsso-admin-person-sanctions')}</h2>
${person.sanctions.length ? sanctionsList(person.sanctions, i18n) : html`<p class="wms-note">${t('wikimatrixsso-admin-person-no-sanctions')}</p>`}
</section>
<section aria-labelledby="actions-heading" class="wms-admin-section">
<h2 id="actions-heading" class="wms-subheading">${t('wikimatrixsso-admin-person-actions')}</h2>
${actionsTable(chrome, person.actions.entries, { retry: true })}
${olderHref ? html`<nav class="wms-pager" aria-label="${i18n.text('wikimatrixsso-admin-older')}"><a class="wms-button" href="${olderHref}" rel="next"><span class="wms-button__label">${t('wikimatrixsso-admin-older')}</span></a></nav>` : ''}
</section>`;
}

function sanctionsList(sanctions: readonly SanctionJson[], i18n: Translator): SafeHtml {
  return html`<ul class="wms-admin-list">${sanctions.map((s) => html`<li>${code(s.kind)}${s.level !== undefined ? html` ${String(s.level)}` : ''}${s.room_id ? html` ${code(s.room_id)}` : ''} — ${causeText(s.cause, i18n)}</li>`)}</ul>`;
}

export function previewBody(chrome: Chrome, recent: readonly RequestJson[]): SafeHtml {
  const { t } = chrome.i18n;
  return html`<p class="wms-lead">${t('wikimatrixsso-admin-preview-intro')}</p>
<div class="wms-actions">${postButton(chrome, '/admin/plans', t('wikimatrixsso-admin-preview-make'), {}, true)}</div>
${recentRequests(chrome, recent)}`;
}

function recentRequests(chrome: Chrome, recent: readonly RequestJson[]): SafeHtml {
  const { i18n } = chrome;
  const { t } = i18n;
  if (recent.length === 0) return html``;
  return html`<h2 class="wms-subheading">${t('wikimatrixsso-admin-preview-recent')}</h2>
<ul class="wms-admin-list">${recent.map((r) => html`<li><a href="/admin/requests/${r.id}">${t(`wikimatrixsso-admin-request-kind-${r.kind}`)} #${r.id}</a> — ${t(`wikimatrixsso-admin-request-state-${r.state}`)}, ${time(r.requested_at, i18n)}, ${t('wikimatrixsso-admin-request-by', r.requested_by)}</li>`)}</ul>`;
}

interface PlanResult {
  digest: string;
  users: number;
  actions: { kind: string; roomId: string | null; userId: string | null; cause: CauseJson | null; description: string }[];
}

export function requestBody(chrome: Chrome, request: RequestJson): SafeHtml {
  const { i18n } = chrome;
  const { t } = i18n;
  const result = request.result as (PlanResult & { reason?: string; passId?: string }) | null;
  const status = html`<p class="wms-note">${t(`wikimatrixsso-admin-request-kind-${request.kind}`)} — <strong>${t(`wikimatrixsso-admin-request-state-${request.state}`)}</strong>, ${time(request.requested_at, i18n)}, ${t('wikimatrixsso-admin-request-by', request.requested_by)}</p>`;
  if (request.state === 'pending' || request.state === 'running') return html`${status}<div class="wms-message wms-message--notice" role="status"><p class="wms-message__content">${t('wikimatrixsso-admin-preview-pending')}</p></div>`;
  if (request.state === 'refused') return html`${status}<div class="wms-message wms-message--warning" role="alert"><p class="wms-message__content">${t('wikimatrixsso-admin-preview-refused', result?.reason ?? '')}</p></div>${postButton(chrome, '/admin/plans', t('wikimatrixsso-admin-preview-make'), {}, true)}`;
  if (request.state === 'failed') return html`${status}<div class="wms-message wms-message--error" role="alert"><p class="wms-message__content">${t('wikimatrixsso-admin-preview-failed', result?.reason ?? '')}</p></div>`;
  if (request.kind !== 'plan') return html`${status}<div class="wms-message wms-message--notice" role="status"><p class="wms-message__content">${t('wikimatrixsso-admin-preview-applied', result?.passId ?? '')}</p></div><p><a href="/admin">${t('wikimatrixsso-admin-nav-activity')}</a></p>`;
  const plan = result as PlanResult;
  return html`${status}
<p class="wms-lead">${t('wikimatrixsso-admin-preview-ready', plan.actions.length, plan.users)}</p>
${plan.actions.length === 0
  ? html`<p class="wms-note">${t('wikimatrixsso-admin-preview-nothing')}</p>`
  : html`<div class="wms-table-wrap"><table class="wms-table"><thead><tr><th scope="col">${t('wikimatrixsso-admin-col-action')}</th><th scope="col">${t('wikimatrixsso-admin-col-room')}</th><th scope="col">${t('wikimatrixsso-admin-col-person')}</th><th scope="col">${t('wikimatrixsso-admin-col-cause')}</th></tr></thead><tbody>
${plan.actions.map((a) => html`<tr><td>${code(a.kind)}<br><small><bdi>${a.description}</bdi></small></td><td>${code(a.roomId)}</td><td>${personLink(a.userId)}</td><td>${causeText(a.cause, i18n)}</td></tr>`)}
</tbody></table></div>
<div class="wms-actions">${postButton(chrome, `/admin/plans/${request.id}/apply`, t('wikimatrixsso-admin-preview-apply'), {}, true)}</div>`}`;
}

export interface OverrideRow {
  username: string;
  localpart: string;
  set_by: string;
  set_at: string;
}

export function overridesBody(chrome: Chrome, overrides: readonly OverrideRow[], serverName: string, values: { username?: string; localpart?: string } = {}): SafeHtml {
  const { i18n } = chrome;
  const { t } = i18n;
  return html`<p class="wms-lead">${t('wikimatrixsso-admin-overrides-intro')}</p>
<form class="wms-filters" method="post" action="/admin/overrides">${csrfField(chrome.admin!.csrf)}
<div class="wms-field"><label class="wms-field__label" for="o-username">${t('wikimatrixsso-admin-overrides-username')}</label><input class="wms-input" id="o-username" name="username" required value="${values.username ?? ''}"></div>
<div class="wms-field"><label class="wms-field__label" for="o-localpart">${t('wikimatrixsso-admin-overrides-localpart')}</label><input class="wms-input" id="o-localpart" name="localpart" required dir="ltr" pattern="[a-z0-9._=/+\\-]+" value="${values.localpart ?? ''}" aria-describedby="o-localpart-hint"><small id="o-localpart-hint" class="wms-field__hint" dir="ltr">@localpart:${serverName}</small></div>
<div class="wms-field wms-field--button"><button type="submit" class="wms-button wms-button--primary"><span class="wms-button__label">${t('wikimatrixsso-admin-overrides-save')}</span></button></div>
</form>
${overrides.length === 0
  ? html`<p class="wms-note">${t('wikimatrixsso-admin-overrides-none')}</p>`
  : html`<div class="wms-table-wrap"><table class="wms-table"><thead><tr><th scope="col">${t('wikimatrixsso-admin-overrides-username')}</th><th scope="col">${t('wikimatrixsso-admin-overrides-localpart')}</th><th scope="col">${t('wikimatrixsso-admin-overrides-set-by')}</th><th scope="col">${t('wikimatrixsso-admin-col-time')}</th><th scope="col"><span class="wms-visually-hidden">${t('wikimatrixsso-admin-overrides-remove')}</span></th></tr></thead><tbody>
${overrides.map((o) => html`<tr><td><bdi>${o.username}</bdi></td><td>${code(o.localpart)}</td><td><bdi>${o.set_by}</bdi></td><td>${time(o.set_at, i18n)}</td><td>${postButton(chrome, '/admin/overrides/withdraw', t('wikimatrixsso-admin-overrides-remove'), { username: o.username })}</td></tr>`)}
</tbody></table></div>`}`;
}

/** A page with a message and one link or button onward (403, sign-in failures, signed out). */
export function messageBody(chrome: Chrome, message: SafeHtml, next: { href: string; label: SafeHtml } | undefined, severity: 'error' | 'warning' | 'notice' = 'error'): SafeHtml {
  return html`<div class="wms-message wms-message--${severity}" role="${severity === 'notice' ? 'status' : 'alert'}"><p class="wms-message__content">${message}</p></div>
${next && isSafeUrl(next.href) ? html`<div class="wms-actions"><a class="wms-button wms-button--primary" href="${next.href}"><span class="wms-button__label">${next.label}</span></a></div>` : ''}`;
}
