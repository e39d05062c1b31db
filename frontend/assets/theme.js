// Applies the saved colour theme before the page paints (loaded blocking in <head>; CSP
// forbids inline scripts, so this is a file). The toggle itself lives in app.js.
import { applyTheme, preferredTheme } from "./theme-store.js";

applyTheme(preferredTheme());
