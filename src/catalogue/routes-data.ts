// Imports routes.json statically so that `npm run build` (tsc) copies it to dist/, where
// catalogue.ts reads it on first use. Nothing imports this module at run time.
import routes from './routes.json' with { type: 'json' };

export default routes;
