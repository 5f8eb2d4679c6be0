import type { JSX } from 'preact';
import { describeError } from '../api.ts';

/** An API error where it happened: role=alert so screen readers announce it. */
export function ErrorNote({ error, prefix }: { error: unknown; prefix?: string }): JSX.Element | null {
  if (error === undefined || error === null) return null;
  return (
    <p class="error" role="alert">
      {prefix ? `${prefix}: ` : ''}
      {describeError(error)}
    </p>
  );
}
