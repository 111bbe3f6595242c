import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { EnvironmentName, quoted } from "../pipeline/names.ts";
import type { EnvironmentStore } from "../release/environment.ts";
import { VariableName, VariableWrite, type Variable, type VariableStore } from "../release/variables.ts";
import { jsonBody, parse } from "./app.ts";

export interface VariableApiOptions {
  store: VariableStore;
  /** Variables belong to registered environments only. */
  environments: Pick<EnvironmentStore, "getEnvironment">;
}

/** The variable as an answer may show it: whatever a store hands back, a secret leaves without its value. */
function shown(v: Variable): Variable {
  if (!v.secret) return v;
  const { value: _value, ...rest } = v;
  return rest;
}

/**
 * GET /api/environments/:env/variables, PUT and DELETE /api/environments/:env/variables/:name.
 * A secret's value goes in with PUT and never comes out: every answer leaves it out.
 */
export function variableRoutes(opts: VariableApiOptions): Hono {
  const app = new Hono();
  const known = async (raw: string) => {
    // A name no environment can have is answered without asking the table, like an unknown one.
    if (!EnvironmentName.safeParse(raw).success) throw new HTTPException(404, { message: `no environment ${quoted(raw)}: names are lower-case letters, digits and -, at most 40` });
    if (!(await opts.environments.getEnvironment(raw))) throw new HTTPException(404, { message: `no environment ${raw}: register it with PUT /api/environments/${raw}` });
    return raw;
  };

  app.get("/api/environments/:env/variables", async (c) => {
    const env = await known(c.req.param("env"));
    return c.json({ variables: (await opts.store.listVariables(env)).map(shown) });
  });

  app.put("/api/environments/:env/variables/:name", async (c) => {
    // The request is checked whole before the table is asked anything.
    const name = parse(VariableName, c.req.param("name"), "name");
    const body = parse(VariableWrite, await jsonBody(c), "body");
    const env = await known(c.req.param("env"));
    return c.json(shown(await opts.store.putVariable(env, name, body.value, body.secret)));
  });

  app.delete("/api/environments/:env/variables/:name", async (c) => {
    const env = await known(c.req.param("env"));
    const name = c.req.param("name");
    // A name no variable can have is answered as an absent one, without asking the table.
    if (!VariableName.safeParse(name).success || !(await opts.store.deleteVariable(env, name)))
      throw new HTTPException(404, { message: `no variable ${quoted(name)} in ${env}: list them with GET /api/environments/${env}/variables` });
    return c.json({ deleted: name });
  });
  return app;
}
