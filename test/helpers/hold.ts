// Observing PENDING_* statuses deterministically: the API sets them and then submits the operation
// to the provider, which would move them on at its own pace.
import type { ProviderRequest } from '../../driver/provider.ts';
import type { TestApi } from './api.ts';

/**
 * Holds every operation the API submits to `provider` until release(), which submits them in
 * order and waits until the provider has finished them.
 */
export function holdSubmissions(api: TestApi, provider = 'amphora'): { release: () => Promise<void> } {
  const driver = api.service.services.providers.get(provider)!;
  const own = Object.getOwnPropertyDescriptor(driver, 'submit');
  const original = driver.submit;
  const held: ProviderRequest[] = [];
  driver.submit = (req: ProviderRequest) => void held.push(req);
  return {
    async release() {
      if (own) Object.defineProperty(driver, 'submit', own);
      else delete (driver as { submit?: unknown }).submit;
      for (const req of held) original.call(driver, req);
      await api.settle();
    },
  };
}
