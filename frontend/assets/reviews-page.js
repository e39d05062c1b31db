// Review pages: @mention completion in every editor.
import { initMentions } from "./mentions.js";
import { ready } from "./ready.js";

ready(() => initMentions());
