// The flowc extension: starts `flowc lsp` (the path is the setting
// `flowc.server.path`, default `flowc` on PATH) for `.flow` files and
// hands it the editor's documents. Everything else — diagnostics, hover,
// completion, definition, references, outline, formatting — is the server's.
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("flowc");
  const command = config.get<string>("server.path", "flowc");
  const extraEnv = config.get<Record<string, string>>("server.extraEnv", {});
  const run = {
    command,
    args: ["lsp"],
    transport: TransportKind.stdio,
    options: { env: { ...process.env, ...extraEnv } },
  };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ language: "flow" }],
  };
  client = new LanguageClient("flowc", "flowc language server", serverOptions, clientOptions);
  context.subscriptions.push(
    vscode.commands.registerCommand("flowc.restartServer", async () => {
      await client?.restart();
    }),
  );
  try {
    await client.start();
  } catch (e) {
    void vscode.window.showErrorMessage(
      `flowc: cannot start \`${command} lsp\` (${e}). Set "flowc.server.path" to the flowc binary.`,
    );
  }
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
