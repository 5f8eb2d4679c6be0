import type { TSchema } from '@sinclair/typebox';
import type { ErrorCode } from '../core/errors.js';
import { compile, type Validator } from '../core/schema.js';

export type ProtocolValidator<T extends TSchema> = Validator<T>;

/** Validator of a protocol document (plans, reports, registration): the shared core validator. */
export function protocolValidator<T extends TSchema>(schema: T, code: ErrorCode = 'SERVER_REQUEST_FAILED'): ProtocolValidator<T> {
  return compile(schema, code);
}
