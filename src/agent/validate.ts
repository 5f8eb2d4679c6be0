import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';
import type { Static, TSchema } from '@sinclair/typebox';
import { EtcdsnapError, type ErrorCode } from '../core/errors.js';

// ajv's CJS default export under NodeNext resolution.
const Ajv = AjvModule.default ?? AjvModule;
const addFormats = addFormatsModule.default ?? addFormatsModule;
/**
 * The protocol schemas put defaults inside unions (`s3: S3Config | null`), which ajv's strict
 * mode (src/core/schema.ts) refuses to compile; the server compiles them with strict off too.
 * Defaults in unions are simply not applied here (parseS3Config applies them later).
 */
const ajv = new Ajv({ allErrors: true, useDefaults: true, removeAdditional: false, strict: false });
addFormats(ajv);

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '(root)'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}

export interface ProtocolValidator<T extends TSchema> {
  check(value: unknown): value is Static<T>;
  parse(value: unknown, what: string): Static<T>;
}

/** Validator of a protocol document (plans, reports, registration). */
export function protocolValidator<T extends TSchema>(schema: T, code: ErrorCode = 'SERVER_REQUEST_FAILED'): ProtocolValidator<T> {
  const fn: ValidateFunction = ajv.compile(schema);
  return {
    check: (value: unknown): value is Static<T> => fn(value) === true,
    parse(value: unknown, what: string): Static<T> {
      if (fn(value) !== true) throw new EtcdsnapError(code, `Invalid ${what}: ${describe(fn.errors)}.`);
      return value as Static<T>;
    },
  };
}
