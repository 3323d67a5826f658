// The causes no loopback test can produce (no route to a host, an expired certificate):
// the same table the real failures in test/upstream-errors.test.ts go through.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyUpstreamError, describeCause } from './classify-error.ts';

function failure(code: string, message = `failed with ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

describe('classifyUpstreamError', () => {
  const expected: [string, string, string][] = [
    ['EHOSTUNREACH', 'unreachable', 'upstream_unreachable'],
    ['ENETUNREACH', 'unreachable', 'upstream_unreachable'],
    ['EAI_AGAIN', 'dns_failure', 'upstream_dns_failure'],
    ['CERT_HAS_EXPIRED', 'tls', 'upstream_tls_error'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'tls', 'upstream_tls_error'],
    ['EPROTO', 'tls', 'upstream_tls_error'],
    ['UND_ERR_CONNECT_TIMEOUT', 'connect_timeout', 'upstream_timeout'],
    ['ECONNRESET', 'reset', 'upstream_unavailable'],
  ];
  for (const [code, kind, gatewayCode] of expected) {
    it(`${code} -> ${gatewayCode}`, () => {
      const classified = classifyUpstreamError(failure(code), 'before-headers');
      assert.equal(classified.kind, kind);
      assert.equal(classified.error.code, gatewayCode);
    });
  }

  it('looks inside the AggregateError of a dual-stack connect', () => {
    const both = new AggregateError([failure('ECONNREFUSED', 'connect ECONNREFUSED ::1:8000'), failure('ECONNREFUSED')]);
    assert.equal(classifyUpstreamError(both, 'before-headers').error.code, 'upstream_connection_refused');
    assert.equal(describeCause(both), 'connect ECONNREFUSED ::1:8000');
  });

  it('describes a cause in one line, its code in front when the message lacks it', () => {
    assert.equal(describeCause(failure('CERT_HAS_EXPIRED', 'certificate has expired')), 'CERT_HAS_EXPIRED: certificate has expired');
    assert.equal(describeCause(failure('X', 'first line\nsecond line')), 'X: first line');
  });
});
