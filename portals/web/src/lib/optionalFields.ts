// openapi-typescript marks a field required when the spec gives it a default (`note: null` default), but
// the API takes it as optional. This drops the fields left undefined and types the rest as the body;
// the API still validates every field (a wrong one is a 422 shown to the person).
export function optionalFields<T>(fields: { [K in keyof T]?: T[K] | undefined }): T {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as T;
}
