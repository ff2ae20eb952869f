// Validates openapi/ember.yaml with an independent OpenAPI validator and
// checks that it documents exactly the routes the server has.
//   node check_spec.mjs SPEC PRINT_ROUTES_BINARY
import SwaggerParser from '@apidevtools/swagger-parser';
import { execFileSync } from 'node:child_process';

const [specPath, printRoutes] = process.argv.slice(2);
const api = await SwaggerParser.validate(specPath);
console.log(`spec: ${api.info.title} ${api.info.version} is valid OpenAPI ${api.openapi}`);

const methods = ['get', 'put', 'patch', 'post', 'delete'];
const documented = new Set();
const problems = [];
for (const [path, item] of Object.entries(api.paths)) {
  for (const method of methods) {
    const operation = item[method];
    if (!operation) continue;
    documented.add(`${method.toUpperCase()} ${path}`);
    if (!operation.responses['400'] && !operation.responses.default) {
      problems.push(`${method.toUpperCase()} ${path} documents no error response`);
    }
    const body = operation.requestBody?.content?.['application/json']?.schema;
    // (MMDS data is any JSON by design: its schema says so with x-free-form.)
    if (body && body.additionalProperties !== false && body['x-free-form'] !== true) {
      problems.push(`${method.toUpperCase()} ${path}: body schema must forbid unknown fields`);
    }
  }
}
const served = new Set(execFileSync(printRoutes).toString().trim().split('\n'));
for (const route of served) if (!documented.has(route)) problems.push(`served but not in the spec: ${route}`);
for (const route of documented) if (!served.has(route)) problems.push(`in the spec but not served: ${route}`);

if (problems.length) {
  for (const problem of problems) console.error(`FAIL: ${problem}`);
  process.exit(1);
}
console.log(`spec and server agree on ${served.size} routes`);
