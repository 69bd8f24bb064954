// An email address is personal data the service needs only to pass on: it is stored at sign-in
// only when the relying party asked for it with the `email` scope, and may have it.

/** Whether a sign-in's authorization request (`scope`) asks for the email, for a client allowed `clientScopes`. */
export function emailRequested(scope: unknown, clientScopes: readonly string[]): boolean {
  const requested = typeof scope === 'string' ? scope.split(' ') : [];
  return requested.includes('email') && clientScopes.includes('email');
}
