import { DryRunGateway } from './dry-run.ts';
import type { MatrixGateway } from './gateway.ts';
import { MasAdminClient, withMasAccounts, type MasAdminOptions } from './mas.ts';
import { SdkMatrixGateway, type SdkGatewayOptions } from './sdk-gateway.ts';

export * from './gateway.ts';
export { MatrixError, NETWORK_ERROR, BAD_RESPONSE, ABORTED } from './errors.ts';
export { DryRunGateway, type PlannedWrite } from './dry-run.ts';
export { SdkMatrixGateway, type SdkGatewayOptions } from './sdk-gateway.ts';
export { MasAdminClient, withMasAccounts, type MasAdminOptions } from './mas.ts';
export { defaultRetryOptions, type RetryOptions } from './retry.ts';
export { creatorsArePrivileged, requiredEventLevel, requiredPowerLevel, userPowerLevel } from './snapshot.ts';

/**
 * The gateway the worker uses: the real one, its account-wide writes sent to MAS when the
 * homeserver's accounts live there, wrapped read-only when `sync.dry_run` is on.
 */
export function createMatrixGateway(options: SdkGatewayOptions & { dryRun: boolean; mas?: Omit<MasAdminOptions, 'logger'> | undefined }): MatrixGateway {
  const { dryRun, mas, ...real } = options;
  const homeserver = new SdkMatrixGateway(real);
  const gateway = mas ? withMasAccounts(homeserver, new MasAdminClient({ ...mas, logger: options.logger })) : homeserver;
  return dryRun ? new DryRunGateway(gateway, options.logger) : gateway;
}
