# azd postprovision hook (PowerShell): put the app's generated secrets into Key Vault and make
# the app resolve its Key Vault references.
# Same contract as postprovision.sh: generated secrets (peppers, master keys) are created from
# the OS CSPRNG only when no secret of that name exists, never overwritten; operator-supplied
# secrets are stored by the operator with `az keyvault secret set --file` (never in azd's .env)
# and only reported here; then the documented Key Vault reference refresh, and a restart if a
# secret was written. The deployer can list secret names and set secrets, never read a value.
# Values go through a private temp file, never the command line.
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_KEY_VAULT_NAME) { throw 'run through azd (azd provision / azd up)' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) { throw 'postprovision: the Azure CLI (az) is required' }

$vault = $env:AZURE_KEY_VAULT_NAME
$tmp = New-TemporaryFile
$changed = $false

function Get-SecretNames {
    # A failing az call is an answer here (not yet authorised, or refused by the firewall).
    $ErrorActionPreference = 'Continue'
    for ($attempt = 1; ; $attempt++) {
        $out = az keyvault secret list --vault-name $vault --query '[].name' --output tsv 2>&1
        if ($LASTEXITCODE -eq 0) { return @($out | Where-Object { $_ }) }
        if ("$out" -match 'ForbiddenByFirewall|ForbiddenByConnection|Public network access is disabled|Client address is not authorized') {
            throw "postprovision: the Key Vault firewall refuses this machine (vnetEnabled). Allow your public address: azd env set KEY_VAULT_ALLOWED_IP_ADDRESSES <your public IPv4>; azd provision (or run azd from inside the VNet). Key Vault said: $out"
        }
        if ($attempt -ge 12) { throw "postprovision: cannot list the secrets of ${vault}: $out" }
        Write-Host "postprovision: waiting for Key Vault access (role assignment propagation), attempt $attempt"
        Start-Sleep -Seconds 15
    }
}

function Set-Secret([string]$Name, [string]$Value) {
    [System.IO.File]::WriteAllText($tmp.FullName, $Value)
    az keyvault secret set --vault-name $vault --name $Name --file $tmp.FullName --encoding utf-8 --output none
    $ok = $LASTEXITCODE -eq 0
    [System.IO.File]::WriteAllText($tmp.FullName, '')
    if (-not $ok) { throw "postprovision: could not store $Name. If it was deleted, recover it (az keyvault secret recover --vault-name $vault --name $Name): a new value would invalidate what the old one protects." }
    $script:changed = $true
}

try {
    $existing = Get-SecretNames

    foreach ($entry in ("$env:KEY_VAULT_GENERATED_SECRETS" -split ' ' | Where-Object { $_ })) {
        $name, $bytes = $entry -split ':'
        if ($existing -contains $name) {
            Write-Host "postprovision: $name exists, kept"
        } else {
            $buffer = [byte[]]::new([int]$bytes)
            [System.Security.Cryptography.RandomNumberGenerator]::Fill($buffer)
            Set-Secret $name ([Convert]::ToBase64String($buffer))
            Write-Host "postprovision: $name generated ($bytes random bytes)"
        }
    }

    foreach ($entry in ("$env:KEY_VAULT_SUPPLIED_SECRETS" -split ' ' | Where-Object { $_ })) {
        $setting, $name = $entry -split ':'
        if ([Environment]::GetEnvironmentVariable($setting)) {
            Write-Host "postprovision: $setting is set in the azd environment, in clear text (.azure/<env>/.env); it is not used."
            Write-Host "  Store it in Key Vault instead and delete that line: az keyvault secret set --vault-name $vault --name $name --file <file>"
        }
        if (-not ($existing -contains $name)) {
            Write-Host "postprovision: $name is not set; features needing $setting stay off until you run:"
            Write-Host "  az keyvault secret set --vault-name $vault --name $name --file <file>; azd hooks run postprovision"
        }
    }
} finally {
    Remove-Item $tmp.FullName -Force -ErrorAction SilentlyContinue
}

# App Service resolves Key Vault references when it starts and caches them for 24 h; the refresh
# makes it fetch them now (on the first `azd up` they were created after the app).
if ($env:AZURE_FUNCTION_APP_ID) {
    $ErrorActionPreference = 'Continue'
    az rest --method post --url "$($env:AZURE_FUNCTION_APP_ID)/config/configreferences/appsettings/refresh?api-version=2022-03-01" --output none
    if ($LASTEXITCODE -eq 0) {
        $unresolved = az rest --method get --url "$($env:AZURE_FUNCTION_APP_ID)/config/configreferences/appsettings?api-version=2022-03-01" --query "value[?properties.status!='Resolved'].name" --output tsv 2>$null
        if ($unresolved) {
            Write-Host 'postprovision: Key Vault references not resolved yet (missing secrets above, or access still propagating):'
            $unresolved | ForEach-Object { Write-Host "  $_" }
        } else {
            Write-Host 'postprovision: every Key Vault reference resolved'
        }
    } else {
        Write-Host 'postprovision: the Key Vault reference refresh failed; values reach the app at its next configuration change (or within 24 h)'
    }
    # Running instances read the resolved values when they start.
    if ($changed) {
        az functionapp restart --resource-group $env:RESOURCE_GROUP --name $env:AZURE_FUNCTION_APP_NAME --output none
        if ($LASTEXITCODE -ne 0) { Write-Host 'postprovision: restart failed; new secrets reach running instances when they next start' }
    }
}
