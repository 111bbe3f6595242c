/** One challenge of a `WWW-Authenticate` header: its scheme (lowercase) and parameters (keys lowercase). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const TOKEN_CHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * The challenges of a `WWW-Authenticate` header (RFC 9110 §11.6.1), e.g.
 * `Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"`.
 * A header may hold several challenges, and fetch joins repeated headers with ", ": a token
 * followed by `=` is a parameter of the current challenge, any other token starts a new one.
 */
export function parseChallenges(header: string): Challenge[] {
  const challenges: Challenge[] = [];
  let current: Challenge | undefined;
  let i = 0;
  const skip = (chars: RegExp) => {
    while (i < header.length && chars.test(header[i] as string)) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && TOKEN_CHAR.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  const quoted = () => {
    let value = "";
    for (i++; i < header.length && header[i] !== '"'; i++) value += header[i] === "\\" ? (header[++i] ?? "") : header[i];
    i++;
    return value;
  };
  while (i < header.length) {
    skip(/[\s,]/);
    const name = token();
    if (name === "") {
      i++; // a character no grammar allows here: passed over
      continue;
    }
    skip(/\s/);
    if (header[i] === "=" && current !== undefined) {
      i++;
      skip(/\s/);
      current.params[name.toLowerCase()] = header[i] === '"' ? quoted() : token();
    } else {
      current = { scheme: name.toLowerCase(), params: {} };
      challenges.push(current);
    }
  }
  return challenges;
}
