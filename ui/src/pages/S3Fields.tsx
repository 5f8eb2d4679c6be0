/**
 * The S3 part of the settings form, with "Test connection" (list, write, read, delete a small
 * object with these settings, before saving). The secret key field starts empty: a stored secret
 * is never sent to the browser, and an empty field keeps it.
 */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import { endpoints, type Cluster, type S3TestResult } from '../api.ts';
import { ErrorNote } from '../components/ErrorNote.tsx';

type S3View = NonNullable<Cluster['policy']['s3']>;

export interface S3Form {
  bucket: string;
  region: string;
  endpoint: string;
  folder: string;
  accessKeyId: string;
  secretAccessKey: string;
  clearSecret: boolean;
  endpointCA: string;
  skipTlsVerify: boolean;
  forcePathStyle: boolean;
  retention: string;
  retentionScope: 'node' | 'cluster';
}

export function s3FormFrom(v: S3View | null): S3Form {
  return {
    bucket: v?.bucket ?? '',
    region: v?.region ?? 'us-east-1',
    endpoint: v?.endpoint ?? '',
    folder: v?.folder ?? '',
    accessKeyId: v?.accessKeyId ?? '',
    secretAccessKey: '',
    clearSecret: false,
    endpointCA: v?.endpointCA ?? '',
    skipTlsVerify: v?.skipTlsVerify ?? false,
    forcePathStyle: v?.forcePathStyle ?? false,
    retention: String(v?.retention ?? 5),
    retentionScope: v?.retentionScope ?? 'node',
  };
}

/** The API's `policy.s3`: the stored tuning fields kept, a secret only when typed (or null to clear it). */
export function s3Payload(f: S3Form, stored: S3View | null): Record<string, unknown> {
  const out: Record<string, unknown> = {
    bucket: f.bucket.trim(),
    region: f.region.trim() || 'us-east-1',
    folder: f.folder.trim(),
    skipTlsVerify: f.skipTlsVerify,
    forcePathStyle: f.forcePathStyle,
    retention: Number(f.retention),
    retentionScope: f.retentionScope,
  };
  if (stored) for (const k of ['timeoutMs', 'maxAttempts', 'partSizeBytes', 'queueSize', 'requestChecksums'] as const) out[k] = stored[k];
  if (f.endpoint.trim()) out.endpoint = f.endpoint.trim();
  if (f.accessKeyId.trim()) out.accessKeyId = f.accessKeyId.trim();
  if (f.secretAccessKey) out.secretAccessKey = f.secretAccessKey;
  else if (f.clearSecret) out.secretAccessKey = null;
  if (f.endpointCA.trim()) out.endpointCA = f.endpointCA.trim() + '\n';
  return out;
}

interface Props {
  clusterId: string;
  value: S3Form;
  stored: S3View | null;
  errors: Partial<Record<string, string>>;
  onChange: (v: S3Form) => void;
}

type InputProps = Omit<JSX.InputHTMLAttributes<HTMLInputElement>, 'id' | 'value' | 'onInput'>;

function Text({ id, label, value, onInput, error, help, ...rest }: { id: string; label: string; value: string; onInput: (v: string) => void; error?: string; help?: string } & InputProps): JSX.Element {
  const describedBy = [help ? `${id}-help` : '', error ? `${id}-error` : ''].filter(Boolean).join(' ') || undefined;
  return (
    <div class="field">
      <label for={`f-${id}`}>{label}</label>
      <input {...rest} id={`f-${id}`} value={value} aria-invalid={error ? 'true' : undefined} aria-describedby={describedBy} onInput={(e) => onInput(e.currentTarget.value)} />
      {help && (
        <small id={`${id}-help`} class="muted block">
          {help}
        </small>
      )}
      {error && (
        <p id={`${id}-error`} class="error">
          {error}
        </p>
      )}
    </div>
  );
}

export function S3Fields({ clusterId, value: f, stored, errors, onChange }: Props): JSX.Element {
  const [test, setTest] = useState<S3TestResult | undefined>();
  const [testError, setTestError] = useState<unknown>();
  const [testing, setTesting] = useState(false);
  const set = <K extends keyof S3Form>(k: K, v: S3Form[K]): void => {
    onChange({ ...f, [k]: v });
    setTest(undefined);
  };
  const runTest = async (): Promise<void> => {
    setTesting(true);
    setTest(undefined);
    setTestError(undefined);
    try {
      setTest(await endpoints.s3Test(clusterId, s3Payload(f, stored)));
    } catch (err) {
      setTestError(err);
    } finally {
      setTesting(false);
    }
  };
  return (
    <div class="s3" role="group" aria-label="S3 settings">
      <div class="grid">
        <Text id="bucket" label="Bucket" value={f.bucket} onInput={(v) => set('bucket', v)} error={errors.bucket} required />
        <Text id="region" label="Region" value={f.region} onInput={(v) => set('region', v)} error={errors.region} />
        <Text id="endpoint" label="Endpoint" value={f.endpoint} onInput={(v) => set('endpoint', v)} error={errors.endpoint} placeholder="https://s3.example.com:9000" help="Empty for AWS S3 of the region." />
        <Text id="folder" label="Folder" value={f.folder} onInput={(v) => set('folder', v)} error={errors.folder} placeholder="prod" />
        <Text id="accessKeyId" label="Access key" value={f.accessKeyId} onInput={(v) => set('accessKeyId', v)} error={errors.accessKeyId} autoComplete="off" help="Empty: the AWS default chain on each node (env, files, instance role)." />
        <Text
          id="secretAccessKey"
          label="Secret key"
          type="password"
          autoComplete="new-password"
          value={f.secretAccessKey}
          onInput={(v) => set('secretAccessKey', v)}
          error={errors.secretAccessKey}
          placeholder={stored?.hasSecretAccessKey ? 'stored — leave empty to keep it' : ''}
          help={stored?.hasSecretAccessKey ? 'A secret key is stored. It is never shown; type a new one to replace it.' : 'No secret key is stored.'}
        />
      </div>
      {stored?.hasSecretAccessKey && (
        <label class="check">
          <input type="checkbox" checked={f.clearSecret} disabled={f.secretAccessKey !== ''} onChange={(e) => set('clearSecret', e.currentTarget.checked)} /> Remove the stored secret key
        </label>
      )}
      <label class="check">
        <input type="checkbox" checked={f.forcePathStyle} onChange={(e) => set('forcePathStyle', e.currentTarget.checked)} /> Path-style addressing (MinIO and most S3-compatible stores)
      </label>
      <label for="f-endpointCA">Custom CA (PEM) for the endpoint</label>
      <textarea id="f-endpointCA" rows={4} spellcheck={false} placeholder="-----BEGIN CERTIFICATE-----" value={f.endpointCA} aria-invalid={errors.endpointCA ? 'true' : undefined} onInput={(e) => set('endpointCA', e.currentTarget.value)} />
      {errors.endpointCA && <p class="error">{errors.endpointCA}</p>}
      <label class="check">
        <input id="f-skipTlsVerify" type="checkbox" checked={f.skipTlsVerify} onChange={(e) => set('skipTlsVerify', e.currentTarget.checked)} /> Skip TLS verification
      </label>
      {f.skipTlsVerify && (
        <p class="warning" role="alert">
          Any certificate will be accepted: someone on the network path could read or replace your snapshots (they hold every Kubernetes Secret). Prefer the custom CA above.
        </p>
      )}
      <div class="row">
        <Text id="s3retention" label="S3 snapshots kept" type="number" min={1} value={f.retention} onInput={(v) => set('retention', v)} error={errors['s3retention']} />
        <div class="field">
          <label for="f-retentionScope">Counted</label>
          <select id="f-retentionScope" value={f.retentionScope} onChange={(e) => set('retentionScope', e.currentTarget.value as 'node' | 'cluster')}>
            <option value="node">per node</option>
            <option value="cluster">across the cluster</option>
          </select>
        </div>
      </div>
      <div class="toolbar">
        <button type="button" disabled={testing || !f.bucket.trim()} onClick={() => void runTest()}>
          {testing ? 'Testing…' : 'Test connection'}
        </button>
        <span class="muted">Lists the folder, writes, reads and deletes a small object with these settings (not saved yet).</span>
      </div>
      <ErrorNote error={testError} prefix="Test not run" />
      {test && (
        <div class={test.ok ? 'ok' : 'error'} role="status" data-testid="s3-test">
          <p>
            <strong>{test.ok ? 'Connection works.' : `Failed at “${test.failedStep ?? '?'}”: ${test.error?.code ?? ''}: ${test.error?.message ?? ''}`}</strong>
          </p>
          <ul>
            {test.steps.map((st) => (
              <li key={st.step}>
                {st.ok ? '✓' : '✗'} {st.step} ({st.durationMs} ms){st.error ? ` — ${st.error.code}: ${st.error.message}` : ''}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
