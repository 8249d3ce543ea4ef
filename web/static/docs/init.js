// Starts Swagger UI on the API's own description. persistAuthorization keeps
// the bearer token typed once in "Authorize" across reloads (in this tab's
// localStorage, as Swagger UI does); "Try it out" then sends it.
window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  persistAuthorization: true,
  tryItOutEnabled: false,
  validatorUrl: null,
});
