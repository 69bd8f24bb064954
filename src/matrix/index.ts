import { DryRunGateway } from './dry-run.ts';
import type { MatrixGateway } from './gateway.ts';
import { SdkMatrixGateway, type SdkGatewayOptions } from './sdk-gateway.ts';

export * from './gateway.ts';
export { MatrixError, NETWORK_ERROR, BAD_RESPONSE, ABORTED } from './errors.ts';
export { DryRunGateway, type PlannedWrite } from './dry-run.ts';
export { SdkMatrixGateway, type SdkGatewayOptions } from './sdk-gateway.ts';
export { defaultRetryOptions, type RetryOptions } from './retry.ts';
export { creatorsArePrivileged, requiredEventLevel, requiredPowerLevel, userPowerLevel } from './snapshot.ts';

/** The gateway the worker uses: the real one, wrapped read-only when `sync.dry_run` is on. */
export function createMatrixGateway(options: SdkGatewayOptions & { dryRun: boolean }): MatrixGateway {
  const { dryRun, ...real } = options;
  const gateway = new SdkMatrixGateway(real);
  return dryRun ? new DryRunGateway(gateway, options.logger) : gateway;
}
