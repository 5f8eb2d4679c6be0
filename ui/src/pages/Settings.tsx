/**
 * The snapshot policy form. The schedule is checked as you type with the server's own parser;
 * the server checks everything again and its errors land next to the field they name. Secrets
 * are write-only: the form never holds a stored secret, only whether one is set.
 */
import type { JSX } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import { ApiError, endpoints, type Cluster } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';
import { exact } from '../format.ts';
import { previewSchedule } from '../schedule.ts';
import type { ClusterState } from './Cluster.tsx';
import { S3Fields, s3FormFrom, s3Payload, type S3Form } from './S3Fields.tsx';

interface Form {
  enabled: boolean;
  schedule: string;
  retention: string;
  compression: 'none' | 'zstd' | 'gzip';
  useS3: boolean;
  s3: S3Form;
}

function formFrom(c: Cluster): Form {
  const p = c.policy;
  return { enabled: p.enabled, schedule: p.schedule, retention: String(p.retention), compression: p.compression, useS3: p.s3 !== null, s3: s3FormFrom(p.s3) };
}

export type FieldErrors = Partial<Record<string, string>>;

/** Which form field a server error names (`body.policy.schedule`, S3 `details.field: bucket`, or the message). */
function fieldOf(err: ApiError): string | undefined {
  const f = err.field?.split('.').pop();
  if (f && f !== 'body' && f !== 'policy' && f !== 's3') return f;
  if (/schedule/i.test(err.message)) return 'schedule';
  const m = /Invalid S3 config: \/(\w+)/.exec(err.message);
  return m?.[1];
}

export function SettingsTab({ s }: { s: ClusterState }): JSX.Element {
  const [form, setForm] = useState<Form>(() => formFrom(s.cluster));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<unknown>();
  const [saved, setSaved] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const preview = useMemo(() => previewSchedule(form.schedule), [form.schedule]);
  const set = <K extends keyof Form>(k: K, v: Form[K]): void => {
    setForm((f) => ({ ...f, [k]: v }));
    setSaved(undefined);
    setErrors((e) => ({ ...e, [k]: undefined }));
  };
  const stored = s.cluster.policy.s3;

  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    const local: FieldErrors = {};
    if (!preview.ok) local.schedule = preview.text;
    const retention = Number(form.retention);
    if (!Number.isInteger(retention) || retention < 1 || retention > 1000) local.retention = 'A whole number from 1 to 1000.';
    if (form.useS3 && !form.s3.bucket.trim()) local.bucket = 'The bucket is required for S3.';
    setErrors(local);
    if (Object.keys(local).length > 0) {
      document.getElementById(`f-${Object.keys(local)[0]}`)?.focus();
      return;
    }
    setBusy(true);
    setFormError(undefined);
    setSaved(undefined);
    try {
      const policy = { enabled: form.enabled, schedule: form.schedule.trim(), retention, compression: form.compression, s3: form.useS3 ? s3Payload(form.s3, stored) : null };
      const c = await endpoints.patchCluster(s.cluster.id, { policy });
      s.setCluster(c);
      setForm(formFrom(c));
      setSaved(`Saved at ${exact(new Date())}. The agents get the new policy now.`);
    } catch (err) {
      const field = err instanceof ApiError ? fieldOf(err) : undefined;
      if (field && err instanceof ApiError && document.getElementById(`f-${field}`)) {
        setErrors({ [field]: `${err.code}: ${err.message}` });
        document.getElementById(`f-${field}`)?.focus();
      } else setFormError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="settings" onSubmit={(e) => void save(e)} noValidate aria-label="Snapshot policy">
      <fieldset>
        <legend>Recurring snapshots</legend>
        <label class="check">
          <input id="f-enabled" type="checkbox" checked={form.enabled} onChange={(e) => set('enabled', e.currentTarget.checked)} />
          Take recurring snapshots on every node
        </label>
        <label for="f-schedule">Schedule</label>
        <input
          id="f-schedule"
          value={form.schedule}
          spellcheck={false}
          aria-invalid={!preview.ok || errors.schedule ? 'true' : undefined}
          aria-describedby="schedule-help schedule-preview"
          onInput={(e) => set('schedule', e.currentTarget.value)}
        />
        <small id="schedule-help" class="muted block">
          Cron in UTC (<code>0 */5 * * *</code>: every 5 hours on the hour; six fields put seconds first) or an interval (<code>@every 12h</code>).
        </small>
        <div id="schedule-preview" class={preview.ok && !errors.schedule ? 'preview' : 'error'} role={preview.ok ? undefined : 'alert'} data-testid="schedule-preview">
          {errors.schedule ?? (preview.ok ? `Runs ${preview.text}. Next: ${preview.next.map((d) => exact(d)).join(' · ')}` : preview.text)}
        </div>
        <div class="row">
          <div>
            <label for="f-retention">Local snapshots kept per node</label>
            <input id="f-retention" type="number" min={1} max={1000} value={form.retention} aria-invalid={errors.retention ? 'true' : undefined} aria-describedby="retention-error" onInput={(e) => set('retention', e.currentTarget.value)} />
            {errors.retention && (
              <p id="retention-error" class="error">
                {errors.retention}
              </p>
            )}
          </div>
          <div>
            <label for="f-compression">Compression</label>
            <select id="f-compression" value={form.compression} onChange={(e) => set('compression', e.currentTarget.value as Form['compression'])}>
              <option value="zstd">zstd (recommended)</option>
              <option value="gzip">gzip</option>
              <option value="none">none</option>
            </select>
          </div>
        </div>
        <p class="muted">On-demand snapshots are never pruned by the schedule.</p>
      </fieldset>
      <fieldset>
        <legend>Where snapshots go</legend>
        <label class="radio">
          <input type="radio" name="target" checked={!form.useS3} onChange={() => set('useS3', false)} /> Local only (each node’s snapshot directory)
        </label>
        <label class="radio">
          <input type="radio" name="target" checked={form.useS3} onChange={() => set('useS3', true)} /> Local and S3
        </label>
        {form.useS3 && <S3Fields clusterId={s.cluster.id} value={form.s3} stored={stored} errors={errors} onChange={(v) => set('s3', v)} />}
      </fieldset>
      <ErrorNote error={formError} prefix="Not saved" />
      {saved && (
        <p class="ok" role="status">
          {saved}
        </p>
      )}
      <div class="buttons">
        <button type="button" onClick={() => (setForm(formFrom(s.cluster)), setErrors({}), setFormError(undefined))}>
          Reset
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Saving…' : 'Save settings'}
        </button>
      </div>
    </form>
  );
}
