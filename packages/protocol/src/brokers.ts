/**
 * Broker URLs as mqtt.js's `servers` list (host, port, protocol). With `servers`, mqtt.js
 * connects to the first and moves on to the next entry on every reconnect, so a client whose
 * broker node died lands on another node of the cluster.
 */
export function mqttServers(
  urls: string[],
): { host: string; port: number; protocol: 'mqtt' | 'mqtts' | 'ws' | 'wss' }[] {
  return urls.map((u) => {
    const url = new URL(u);
    const scheme = url.protocol.replace(/:$/, '');
    const protocol = scheme === 'tcp' ? 'mqtt' : scheme;
    if (protocol !== 'mqtt' && protocol !== 'mqtts' && protocol !== 'ws' && protocol !== 'wss')
      throw new Error(`not an MQTT URL: ${u}`);
    const port =
      Number(url.port) ||
      (protocol === 'mqtts' ? 8883 : protocol === 'mqtt' ? 1883 : protocol === 'wss' ? 443 : 80);
    return { host: url.hostname, port, protocol };
  });
}
