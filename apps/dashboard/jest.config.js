module.exports = require("../../tooling/jest.config.base.js")(__dirname);
