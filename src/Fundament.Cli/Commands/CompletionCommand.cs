using System.ComponentModel;
using Spectre.Console.Cli;

namespace Fundament.Cli.Commands;

internal sealed class CompletionSettings : CommandSettings
{
    [CommandArgument(0, "<SHELL>")]
    [Description("bash or zsh")]
    public string Shell { get; init; } = "";
}

/// <summary>
/// <c>fund completion bash|zsh</c>: a completion script for the command tree (commands and
/// sub-commands; options after them). <c>source &lt;(fund completion bash)</c>, or for zsh
/// <c>fund completion zsh &gt; "${fpath[1]}/_fund"</c>.
/// </summary>
internal sealed class CompletionCommand : Command<CompletionSettings>
{
    public override int Execute(CommandContext context, CompletionSettings settings, CancellationToken cancellationToken)
    {
        var tree = Program.Tree;
        switch (settings.Shell)
        {
            case "bash":
                Console.Out.Write($$"""
                    # bash completion for fund
                    _fund() {
                        local cur="${COMP_WORDS[COMP_CWORD]}" first="${COMP_WORDS[1]}"
                        if [ "$COMP_CWORD" -eq 1 ]; then
                            COMPREPLY=( $(compgen -W "{{string.Join(' ', tree.Keys)}}" -- "$cur") )
                            return
                        fi
                        case "$first" in
                    {{string.Concat(tree.Where(t => t.Value.Length > 0).Select(t => $"        {t.Key}) [ \"$COMP_CWORD\" -eq 2 ] && COMPREPLY=( $(compgen -W \"{string.Join(' ', t.Value)}\" -- \"$cur\") ) ;;\n"))}}    esac
                        [ -z "$COMPREPLY" ] && COMPREPLY=( $(compgen -W "--output --context --help" -- "$cur") $(compgen -f -- "$cur") )
                    }
                    complete -F _fund fund

                    """);
                return ExitCodes.Ok;
            case "zsh":
                Console.Out.Write($$"""
                    #compdef fund
                    _fund() {
                      local -a commands
                      if (( CURRENT == 2 )); then
                        commands=({{string.Join(' ', tree.Keys)}})
                        _describe 'command' commands
                        return
                      fi
                      case $words[2] in
                    {{string.Concat(tree.Where(t => t.Value.Length > 0).Select(t => $"    {t.Key}) (( CURRENT == 3 )) && {{ local -a sub; sub=({string.Join(' ', t.Value)}); _describe 'command' sub; return }} ;;\n"))}}  esac
                      _arguments '--output[table or json]:format:(table json)' '--context[context]:name:' '*:file:_files'
                    }
                    compdef _fund fund

                    """);
                return ExitCodes.Ok;
            default:
                throw new CliException(ExitCodes.Usage, "the shell must be bash or zsh.");
        }
    }
}
