// Module resolution hook: 'k6' and 'k6/<name>' resolve to stubs/<name>.mjs.
const stubs = new URL('./stubs/', import.meta.url);

export async function resolve(specifier, context, next) {
  if (specifier === 'k6' || specifier.startsWith('k6/')) {
    const name = specifier === 'k6' ? 'k6' : specifier.slice(3).replaceAll('/', '_');
    return { url: new URL(`${name}.mjs`, stubs).href, shortCircuit: true };
  }
  if (/^https?:/.test(specifier)) {
    throw new Error(`remote import ${specifier}: k6 scripts here must not fetch modules at run time`);
  }
  return next(specifier, context);
}
