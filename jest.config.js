// Jest: one project per test tier, so `npx jest --selectProjects unit` runs one. The TypeScript is
// Node's own (ESM, `.ts` import specifiers): @swc/jest strips the types and leaves the modules as
// they are, which jest runs as ES modules (NODE_OPTIONS=--experimental-vm-modules, set by .npmrc).
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, sourceMaps: 'inline' }];

/** @param {string} name @param {import('jest').Config} options */
const tier = (name, options = {}) => ({
  displayName: name,
  testMatch: [`<rootDir>/test/${name}/**/*.test.ts`],
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  testEnvironment: '<rootDir>/test/support/jest-environment.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/jest-setup.ts'],
  ...options,
});

/** @type {import('jest').Config} */
export default {
  projects: [tier('unit'), tier('integration'), tier('e2e'), tier('faults')],
  reporters: ['default', '<rootDir>/scripts/jest-summary.ts'],
  coverageProvider: 'v8',
  collectCoverageFrom: ['<rootDir>/src/**/*.ts'],
};
