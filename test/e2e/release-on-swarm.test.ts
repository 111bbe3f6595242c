import { releasesOn } from "../support/release-suite.ts";

releasesOn("Swarm");
