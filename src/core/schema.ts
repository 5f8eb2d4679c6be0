import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { EtcdsnapError, type ErrorCode } from './errors.js';

// ajv's CJS default export under NodeNext resolution.
const Ajv = AjvModule.default ?? AjvModule;
const addFormats = addFormatsModule.default ?? addFormatsModule;
// Strict, except that a default inside a union (e.g. the policy's `s3: S3Config | null`) is
// allowed: ajv does not apply it there, parseS3Config does.
const ajv = new Ajv({ allErrors: true, useDefaults: true, removeAdditional: false, strict: true, strictSchema: false });
addFormats(ajv);

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}${e.keyword === 'additionalProperties' ? ` (${String((e.params as { additionalProperty?: string }).additionalProperty)})` : ''}`)
    .join('; ');
}

/** A compiled validator: `parse` returns the typed, default-filled value or throws `code`. */
export interface Validator<T extends TSchema> {
  schema: T;
  check(value: unknown): value is Static<T>;
  parse(value: unknown, what: string): Static<T>;
}

export function compile<T extends TSchema>(schema: T, code: ErrorCode = 'INVALID_ARGUMENT'): Validator<T> {
  // Compiled on first use: modules declare their validators at load, and a CLI command
  // should not pay for compiling schemas it never checks.
  let compiled: ValidateFunction | undefined;
  const fn = (): ValidateFunction => (compiled ??= ajv.compile(schema));
  return {
    schema,
    check: (value: unknown): value is Static<T> => fn()(value) === true,
    parse(value: unknown, what: string): Static<T> {
      const validate = fn();
      if (validate(value) !== true) {
        throw new EtcdsnapError(code, `Invalid ${what}: ${describe(validate.errors)}.`);
      }
      return value as Static<T>;
    },
  };
}
