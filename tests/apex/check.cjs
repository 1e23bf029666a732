// Parses Apex classes (.cls) and triggers (.trigger) with the Apex Dev Tools parser, the grammar
// that tracks Salesforce's compiler, and prints each syntax error as "file:line:column: message".
// Exit status 1 when any file has one. Used by tests/unit/test_apex_parses.py; needs
// `npm ci --prefix tests/apex` (.ci/run does it).
const fs = require("fs");
const { ApexParserFactory, ApexErrorListener } = require("@apexdevtools/apex-parser");

class Collect extends ApexErrorListener {
  constructor(file) {
    super();
    this.file = file;
    this.errors = [];
  }
  apexSyntaxError(line, column, message) {
    this.errors.push(`${this.file}:${line}:${column}: ${message.slice(0, 200)}`);
  }
}

let failed = 0;
for (const file of process.argv.slice(2)) {
  const listener = new Collect(file);
  const { parser } = ApexParserFactory.createLexerAndParser(fs.readFileSync(file, "utf8"), listener);
  if (file.endsWith(".trigger")) {
    parser.triggerUnit();
  } else {
    parser.compilationUnit();
  }
  for (const error of listener.errors) {
    console.log(error);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
