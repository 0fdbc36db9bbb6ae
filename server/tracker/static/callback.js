// The OAuth redirect target: exchange the code, then go where the user was heading.
import { completeSignIn, showProblem } from "/app/app.js";

completeSignIn().then((next) => location.replace(next)).catch(showProblem);
