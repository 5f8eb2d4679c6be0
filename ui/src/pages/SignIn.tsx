import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { api, ApiError, describeError, session, type Cluster } from '../api.ts';

/** The admin token, checked against the API before it is kept (sessionStorage: this tab only). */
export function SignIn({ onSignedIn, notice }: { onSignedIn: () => void; notice?: string }): JSX.Element {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const t = token.trim();
    if (!t) {
      setError('Enter the admin token (esa_…).');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await api<Cluster[]>('GET', '/clusters', undefined, t);
      session.set(t);
      onSignedIn();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError(`That token was refused (${err.message}) Use the admin token the server printed at its first start.`);
      else if (err instanceof ApiError && err.status === 403) setError('That is not an admin token: node and registration tokens cannot sign in.');
      else setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="signin">
      <form onSubmit={(e) => void submit(e)} aria-describedby="signin-help">
        <h1>etcdsnap</h1>
        <p id="signin-help" class="muted">
          Sign in with the admin token (<code>esa_…</code>) the server printed at its first start. It is kept for this browser tab only.
        </p>
        {notice && <p class="notice">{notice}</p>}
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={token}
          aria-invalid={error ? 'true' : undefined}
          aria-describedby={error ? 'token-error' : undefined}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        {error && (
          <p id="token-error" class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
