import type { JSX } from 'preact';
import { age, exact } from '../format.ts';

/** Relative age with the exact time on hover (and for screen readers via <time datetime>). */
export function Time({ iso, class: cls }: { iso: string | null | undefined; class?: string }): JSX.Element {
  if (!iso) return <span class={cls}>—</span>;
  return (
    <time dateTime={iso} title={exact(iso)} class={cls}>
      {age(iso)}
    </time>
  );
}
