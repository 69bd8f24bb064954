/**
 * Sample data for every page and every error variant: rendered by the tests in every language and
 * handy for a preview route while working on the look.
 */
import type { Site } from './layout.ts';
import type { PageModels, PageName } from './pages.ts';
import type { Problem } from './problems.ts';

export const SAMPLE_SITE: Site = { serviceName: 'Wikimedia Chat', wikiName: 'Wikimedia' };

export type Sample = { [N in PageName]: { id: string; name: N; model: PageModels[N] } }[PageName];

const interaction = '/interaction/Xf3kP0aQ';

export const SAMPLE_PROBLEMS: readonly Problem[] = [
  { kind: 'account_not_attached' },
  { kind: 'account_hidden' },
  { kind: 'account_name_invalid' },
  { kind: 'blocked', scope: 'any' },
  { kind: 'blocked', scope: 'sitewide' },
  { kind: 'sanctioned' },
  { kind: 'too_few_edits', minEdits: 1 },
  { kind: 'too_few_edits', minEdits: 2 },
  { kind: 'too_few_edits', minEdits: 1000 },
  { kind: 'account_too_new', minDays: 1 },
  { kind: 'account_too_new', minDays: 30 },
  { kind: 'missing_group', groups: ['sysop'] },
  { kind: 'missing_group', groups: ['sysop', 'bureaucrat', 'steward'] },
  { kind: 'forbidden_group', group: 'bot' },
  { kind: 'wiki_cancelled' },
  { kind: 'wiki_unavailable' },
  { kind: 'wiki_timeout' },
  { kind: 'session_invalid' },
  { kind: 'not_found' },
  { kind: 'bad_request' },
  { kind: 'server_error' },
];

function problemId(problem: Problem): string {
  const detail = Object.entries(problem)
    .filter(([key]) => key !== 'kind')
    .map(([, value]) => String(value).replace(/,/g, '+'));
  return ['error', problem.kind, ...detail].join('-');
}

export function samples(): Sample[] {
  return [
    {
      id: 'login',
      name: 'login',
      model: { clientName: 'Element', continueTo: { action: `${interaction}/wiki` }, cancel: { action: `${interaction}/abort` } },
    },
    {
      id: 'consent',
      name: 'consent',
      model: {
        clientName: 'Wikimedia Stats Bot',
        username: 'Example editor',
        scopes: ['openid', 'profile', 'email', 'wiki', 'offline_access'],
        allow: { action: `${interaction}/confirm` },
        deny: { action: `${interaction}/abort` },
      },
    },
    { id: 'logout', name: 'logout', model: { action: 'https://sso.example.org/session/end/confirm', xsrf: 'b1f0c2d9e8a7' } },
    { id: 'logged-out', name: 'logged-out', model: {} },
    ...SAMPLE_PROBLEMS.map((problem): Sample => ({
      id: problemId(problem),
      name: 'error',
      model: {
        problem,
        requestId: '6f1c2b1e-5d0a-4c8e-9a57-0c3f2d1b7e44',
        retryUrl: '/',
        returnTo: { clientName: 'Element <script>', target: { action: '/interaction/abc/abort', fields: { problem: problem.kind } } },
      },
    })),
  ];
}
