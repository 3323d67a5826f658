import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Router } from './router.ts';

describe('router', () => {
  const router = new Router<string>()
    .add('POST', '/v1/responses', 'create')
    .add('GET', '/v1/responses/:id', 'get')
    .add('DELETE', '/v1/responses/:id', 'delete')
    .add('GET', '/v1/responses/:id/input_items', 'items');

  it('matches exact paths and patterns with decoded params', () => {
    const exact = router.find('POST', '/v1/responses');
    assert.equal(exact.kind === 'match' && exact.match.handler, 'create');
    const pattern = router.find('GET', '/v1/responses/resp%5F1/input_items');
    assert.ok(pattern.kind === 'match');
    assert.equal(pattern.match.handler, 'items');
    assert.deepEqual(pattern.match.params, ['resp_1']);
    assert.equal(pattern.match.label, '/v1/responses/:id/input_items');
  });

  it('reports the allowed methods when only the method is wrong', () => {
    assert.deepEqual(router.find('PUT', '/v1/responses/x'), { kind: 'method-not-allowed', allow: ['GET', 'DELETE'] });
    assert.deepEqual(router.find('GET', '/v1/responses'), { kind: 'method-not-allowed', allow: ['POST'] });
  });

  it('finds nothing for other paths, empty or malformed params', () => {
    assert.equal(router.find('GET', '/v1/other').kind, 'none');
    assert.equal(router.find('GET', '/v1/responses/').kind, 'none');
    assert.equal(router.find('GET', '/v1/responses/%E0%A4%A').kind, 'none');
  });
});
