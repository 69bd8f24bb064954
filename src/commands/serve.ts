import type { Config } from '../config/load.ts';
import { createApp } from '../http/app.ts';
import { listen, type RunningServer } from '../http/server.ts';
import type { Logger } from '../log.ts';
import { openMigratedDatabase } from './common.ts';

export interface Service {
  url: string;
  stop(): Promise<void>;
}

export async function startService(config: Config, log: Logger): Promise<Service> {
  const db = await openMigratedDatabase(config, log);
  let running: RunningServer;
  try {
    const app = createApp({ db, log, trustProxy: config.http.trust_proxy });
    running = await listen(app, config.http.host, config.http.port);
  } catch (error) {
    await db.close();
    throw error;
  }
  log.info({ listening: running.url, issuer: config.http.public_url }, 'serving');
  return {
    url: running.url,
    async stop() {
      await running.close(config.http.shutdown_grace * 1000);
      await db.close();
      log.info('stopped');
    },
  };
}
