// A softphone's presence side, as an application would write it with SIP.js 0.21 (native ES
// modules from node_modules/sip.js/lib, served by the test): a UserAgent over the hub's WebSocket
// and one Publisher per event package. The test calls window.phone.* through the driver.

import { Publisher, UserAgent } from '/node_modules/sip.js/lib/index.js';

const CONTENT_TYPE = { dialog: 'application/dialog-info+xml', presence: 'application/pidf+xml' };
let ua = null;
const publishers = new Map();
const answers = []; // [event, status] of every final PUBLISH response

function publisherFor(event) {
  let p = publishers.get(event);
  if (p) return p;
  p = new Publisher(ua, ua.configuration.uri, event, { contentType: CONTENT_TYPE[event], expires: 600 });
  const receive = p.receiveResponse.bind(p);
  p.receiveResponse = (res) => {
    if (res.statusCode >= 200) answers.push([event, res.statusCode]);
    return receive(res);
  };
  publishers.set(event, p);
  return p;
}

window.phone = {
  answers,
  async start({ url, user, domain }) {
    ua = new UserAgent({
      uri: UserAgent.makeURI(`sip:${user}@${domain}`),
      transportOptions: { server: url },
      userAgentString: 'SIPjs-browser-test',
      logLevel: 'warn',
    });
    await ua.start();
    return 'started';
  },
  // publish sends the body and resolves once the hub has answered it: [event, status].
  async publish(event, body) {
    const before = answers.length;
    await publisherFor(event).publish(body);
    for (let i = 0; i < 100 && answers.length === before; i++) await new Promise((r) => setTimeout(r, 50));
    return answers[answers.length - 1];
  },
  async unpublish(event) {
    const before = answers.length;
    await publisherFor(event).unpublish();
    for (let i = 0; i < 100 && answers.length === before; i++) await new Promise((r) => setTimeout(r, 50));
    return answers[answers.length - 1];
  },
  async stop() {
    for (const p of publishers.values()) await p.dispose();
    await ua.stop();
    return 'stopped';
  },
};
