import type { FastifyError, FastifyInstance } from 'fastify';
import { EtcdsnapError, ERROR_CODES, type ErrorCode } from '../core/errors.js';

/** A validation error's field as a path: `body.policy.schedule`, `query.wait`. */
function fieldOf(err: FastifyError): string {
  const first = err.validation?.[0];
  const part = err.validationContext ?? 'body';
  if (!first) return part;
  const params = first.params as { missingProperty?: string; additionalProperty?: string };
  const path = first.instancePath.split('/').filter(Boolean);
  if (params.missingProperty) path.push(params.missingProperty);
  if (params.additionalProperty) path.push(params.additionalProperty);
  return [part, ...path].join('.');
}

function describeValidation(err: FastifyError): string {
  const first = err.validation?.[0];
  const params = first?.params as { additionalProperty?: string } | undefined;
  if (first?.keyword === 'additionalProperties') return `unknown field "${params?.additionalProperty}"`;
  return first?.message ?? err.message;
}

/**
 * Every error leaves as `{code, message[, details]}` with the code's HTTP status: ours as they
 * are, schema violations as 400 INVALID_ARGUMENT naming the field, Fastify's own client errors
 * (bad JSON, too large, wrong media type) as INVALID_ARGUMENT with their status, the rest as a
 * 500 INTERNAL whose details stay in the log.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof EtcdsnapError) {
      if (err.status >= 500) req.log.error({ err, code: err.code }, err.message);
      if (err.code === 'UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer');
      return reply.code(err.status).send(err.toJSON());
    }
    if (err.validation) {
      const field = fieldOf(err);
      return reply.code(400).send({ code: 'INVALID_ARGUMENT', message: `Invalid ${field}: ${describeValidation(err)}.`, details: { field } });
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500;
    if (status >= 400 && status < 500) {
      const code: ErrorCode = status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT';
      return reply.code(status === 404 ? 404 : status).send({ code, message: err.message });
    }
    req.log.error({ err }, 'request failed');
    return reply.code(ERROR_CODES.INTERNAL.status).send({ code: 'INTERNAL', message: 'Internal server error: see the server log.' });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'NOT_FOUND', message: `No route ${req.method} ${req.url.split('?')[0]}: see GET /api/v1/openapi.json.` });
  });
}
