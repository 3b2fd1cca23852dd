// The one API client: typed from the committed OpenAPI types, a middleware adds the bearer token, and
// every failure becomes an ApiProblem whose message is the problem's `detail`, ready to show.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "@/api/schema";
import { accessToken } from "./auth";

export type Schemas = components["schemas"];
type ProblemBody = Partial<Schemas["ProblemDetails"]>;

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly title: string,
    readonly errors: NonNullable<ProblemBody["errors"]> = [],
  ) {
    super(message);
    this.name = "ApiProblem";
  }
}

/** What to tell the person about a failed response: the problem's detail, else its title. */
export function problemFrom(status: number, body: unknown): ApiProblem {
  const problem: ProblemBody = body !== null && typeof body === "object" ? (body as ProblemBody) : {};
  const title = typeof problem.title === "string" ? problem.title : `Request failed (HTTP ${status})`;
  const fields = (problem.errors ?? []).map((e) => `${e.name}: ${e.reason}`).join("; ");
  const detail = typeof problem.detail === "string" && problem.detail ? problem.detail : fields || title;
  return new ApiProblem(status, detail, title, problem.errors ?? []);
}

const bearer: Middleware = {
  async onRequest({ request }) {
    const token = await accessToken();
    if (token) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "" });
api.use(bearer);

type Result<T> = { data?: T; error?: unknown; response: Response };

/** Awaits an openapi-fetch call and returns its data, or throws an ApiProblem with what to show. */
export async function call<T>(request: Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request;
  } catch (err) {
    if (err instanceof ApiProblem) throw err;
    throw new ApiProblem(0, "The marketplace could not be reached. Check your connection and try again.", "Offline");
  }
  if (result.response.ok && result.data !== undefined) return result.data;
  throw problemFrom(result.response.status, result.error);
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : "Something went wrong. Try again.";
}
