// The dashboard's only way to the data: POST /graphql, like any other client of the API.

/** An answer that carries no usable data: a refused token, a refused panel, a bad input. */
export class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

// BigInt values arrive as JSON integers. Below 2^53 a Number holds them exactly; above it,
// the source text (JSON.parse source access) becomes a BigInt so no digit is lost.
function reviveBigIntegers(_key, value, context) {
  if (
    typeof value === "number" &&
    !Number.isSafeInteger(value) &&
    context &&
    /^-?\d+$/.test(context.source)
  ) {
    return BigInt(context.source);
  }
  return value;
}

/**
 * Runs one operation with the token; resolves to `data`, or rejects with an ApiError
 * carrying the first error's message and code (FORBIDDEN, PLAN_REQUIRED, ...).
 */
export async function graphql(token, query, variables = {}) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        Accept: "application/graphql-response+json, application/json;q=0.9",
        "Content-Type": "application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new ApiError("The server cannot be reached. Is creditlens running?", "NETWORK", 0);
  }
  let body;
  try {
    body = JSON.parse(await response.text(), reviveBigIntegers);
  } catch {
    throw new ApiError(`The server answered ${response.status} without JSON.`, "BAD_RESPONSE", response.status);
  }
  const first = body.errors && body.errors[0];
  if (first) {
    const code = (first.extensions && first.extensions.code) || "ERROR";
    throw new ApiError(first.message, code, response.status);
  }
  return body.data;
}
