// TrainFlow portal service worker: shows push messages (the server encrypts them for this
// browser; the browser has decrypted them by now) and opens a message's link when tapped.
self.addEventListener('push', function (event) {
  var message = {};
  try { message = event.data ? event.data.json() : {}; } catch (e) { message = {}; }
  event.waitUntil(self.registration.showNotification(message.title || 'TrainFlow', {
    body: message.body || '',
    tag: message.tag,
    data: { url: message.url || '/portal/notifications' }
  }));
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
