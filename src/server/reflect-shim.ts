/**
 * @peculiar/x509 2.x uses tsyringe, which refuses to load without a `Reflect.getMetadata`
 * polyfill (the `reflect-metadata` package, not among our dependencies). tsyringe calls only
 * getMetadata, getOwnMetadata and defineMetadata: this is that much of the API, installed only
 * when no polyfill is present. Import it before @peculiar/x509.
 */
type Key = unknown;
type Target = object;
type MetaMap = Map<Key, unknown>;

const store = new WeakMap<Target, Map<PropertyKey | undefined, MetaMap>>();

function own(target: Target, prop: PropertyKey | undefined, create: boolean): MetaMap | undefined {
  let byProp = store.get(target);
  if (!byProp) {
    if (!create) return undefined;
    store.set(target, (byProp = new Map()));
  }
  let map = byProp.get(prop);
  if (!map && create) byProp.set(prop, (map = new Map()));
  return map;
}

interface ReflectMetadataApi {
  defineMetadata(key: Key, value: unknown, target: Target, prop?: PropertyKey): void;
  getOwnMetadata(key: Key, target: Target, prop?: PropertyKey): unknown;
  getMetadata(key: Key, target: Target, prop?: PropertyKey): unknown;
  hasOwnMetadata(key: Key, target: Target, prop?: PropertyKey): boolean;
  hasMetadata(key: Key, target: Target, prop?: PropertyKey): boolean;
  metadata(key: Key, value: unknown): (target: Target, prop?: PropertyKey) => void;
}

const R = Reflect as unknown as Partial<ReflectMetadataApi>;
if (typeof R.getMetadata !== 'function') {
  const api: ReflectMetadataApi = {
    defineMetadata: (key, value, target, prop) => void (own(target, prop, true) as MetaMap).set(key, value),
    getOwnMetadata: (key, target, prop) => own(target, prop, false)?.get(key),
    getMetadata(key, target, prop) {
      for (let t: Target | null = target; t; t = Object.getPrototypeOf(t) as Target | null) {
        const map = own(t, prop, false);
        if (map?.has(key)) return map.get(key);
      }
      return undefined;
    },
    hasOwnMetadata: (key, target, prop) => own(target, prop, false)?.has(key) ?? false,
    hasMetadata: (key, target, prop) => api.getMetadata(key, target, prop) !== undefined,
    metadata: (key, value) => (target, prop) => api.defineMetadata(key, value, target, prop),
  };
  Object.assign(Reflect, api);
}

export {};
